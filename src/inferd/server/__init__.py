"""inferd's server: the Inference API, TGI and OpenAI protocols over one engine of models. Needs `inferd[server]`."""
