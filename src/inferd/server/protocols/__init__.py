"""Wire protocols the server speaks over one engine: HF Inference API (hf), TGI (tgi), OpenAI (openai)."""
