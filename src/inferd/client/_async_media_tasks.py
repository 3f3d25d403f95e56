"""Task methods whose input or output is audio or an image (spec §5). Parameter meanings live in
`inferd.tasks`. Binary inputs: bytes, a binary file, a path, an http(s) URL or a PIL.Image.
"""

from __future__ import annotations

from typing import Any

from ..tasks._types import Label
from ..tasks.audio_to_audio import AudioToAudioOutput
from ..tasks.document_question_answering import DocumentQuestionAnsweringOutput
from ..tasks.image_segmentation import ImageSegmentationOutput
from ..tasks.object_detection import ObjectDetectionOutput
from ..tasks.visual_question_answering import VisualQuestionAnsweringOutput
from . import _payloads as p
from ._async_base import _AsyncBase
from ._inputs import ContentT, b64encode, pil_image


class _AsyncMediaTasks(_AsyncBase):
    async def audio_classification(
        self,
        audio: ContentT,
        *,
        model: str | None = None,
        top_k: int | None = None,
        function_to_apply: str | None = None,
    ) -> list[Label]:
        """>>> client.audio_classification("audio.flac")[0]["label"]
        'neu'
        """
        body = p.binary_body(
            await self._binary(audio), p.params(top_k=top_k, function_to_apply=function_to_apply)
        )
        return p.expect_list(await self._call_json("audio-classification", body, model=model))

    async def audio_to_audio(self, audio: ContentT, *, model: str | None = None) -> list[AudioToAudioOutput]:
        """>>> [item["content-type"] for item in client.audio_to_audio("audio.flac")]
        ['audio/flac']
        """
        return p.audio_to_audio(
            await self._call_json("audio-to-audio", await self._binary(audio), model=model)
        )

    async def automatic_speech_recognition(
        self,
        audio: ContentT,
        *,
        model: str | None = None,
        return_timestamps: bool | None = None,
        language: str | None = None,
        prompt: str | None = None,
        generate_parameters: dict[str, Any] | None = None,
    ) -> Any:
        """The transcript; with `return_timestamps=True`, the whole `{"text", "chunks"}` answer.

        >>> client.automatic_speech_recognition("hello_world.flac")
        'hello world'
        """
        parameters = p.params(
            return_timestamps=return_timestamps,
            language=language,
            prompt=prompt,
            generate_parameters=generate_parameters,
        )
        body = p.binary_body(await self._binary(audio), parameters)
        answer = await self._call_json("automatic-speech-recognition", body, model=model)
        return p.speech_recognition(answer, full=bool(return_timestamps))

    async def text_to_speech(
        self, text: str, *, model: str | None = None, speaker: str | None = None
    ) -> bytes:
        """Audio bytes (FLAC from the hosted API).

        >>> Path("hello.flac").write_bytes(client.text_to_speech("Hello world"))
        """
        body = p.inputs_body(text, p.params(speaker=speaker))
        return (await self._call("text-to-speech", body, model=model)).content

    async def image_classification(
        self,
        image: ContentT,
        *,
        model: str | None = None,
        top_k: int | None = None,
        function_to_apply: str | None = None,
    ) -> list[Label]:
        """>>> client.image_classification("cat.jpg")[0]["label"]
        'tabby, tabby cat'
        """
        body = p.binary_body(
            await self._binary(image), p.params(top_k=top_k, function_to_apply=function_to_apply)
        )
        return p.expect_list(await self._call_json("image-classification", body, model=model))

    async def image_segmentation(
        self,
        image: ContentT,
        *,
        model: str | None = None,
        threshold: float | None = None,
        mask_threshold: float | None = None,
        overlap_mask_area_threshold: float | None = None,
        subtask: str | None = None,
    ) -> list[ImageSegmentationOutput]:
        """Masks come back as PIL images.

        >>> client.image_segmentation("cat.jpg")[0]["mask"].size
        (512, 512)
        """
        parameters = p.params(
            threshold=threshold,
            mask_threshold=mask_threshold,
            overlap_mask_area_threshold=overlap_mask_area_threshold,
            subtask=subtask,
        )
        body = p.binary_body(await self._binary(image), parameters)
        return p.segmentation(await self._call_json("image-segmentation", body, model=model))

    async def image_to_image(
        self,
        image: ContentT,
        prompt: str | None = None,
        *,
        negative_prompt: str | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        model: str | None = None,
        seed: int | None = None,
        scheduler: str | None = None,
        target_size: dict[str, int] | None = None,
        strength: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """A PIL image.

        >>> client.image_to_image("cat.jpg", prompt="turn the cat into a tiger").save("tiger.png")
        """
        parameters = p.params(
            prompt=prompt,
            negative_prompt=negative_prompt,
            height=height,
            width=width,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            seed=seed,
            scheduler=scheduler,
            target_size=target_size,
            strength=strength,
            **kwargs,
        )
        body = p.binary_body(await self._binary(image), parameters)
        return pil_image((await self._call("image-to-image", body, model=model)).content)

    async def image_to_text(
        self,
        image: ContentT,
        *,
        model: str | None = None,
        max_new_tokens: int | None = None,
        generate_parameters: dict[str, Any] | None = None,
    ) -> str:
        """>>> client.image_to_text("cat.jpg")
        'a cat sitting on a couch'
        """
        parameters = p.params(max_new_tokens=max_new_tokens, generate_parameters=generate_parameters)
        body = p.binary_body(await self._binary(image), parameters)
        return p.field(await self._call_json("image-to-text", body, model=model), "generated_text")  # type: ignore[no-any-return]

    async def object_detection(
        self, image: ContentT, *, model: str | None = None, threshold: float | None = None
    ) -> list[ObjectDetectionOutput]:
        """>>> client.object_detection("people.jpg")[0]["box"]
        {'xmin': 59, 'ymin': 39, 'xmax': 420, 'ymax': 510}
        """
        body = p.binary_body(await self._binary(image), p.params(threshold=threshold))
        return p.expect_list(await self._call_json("object-detection", body, model=model))

    async def text_to_image(
        self,
        prompt: str,
        *,
        negative_prompt: str | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        model: str | None = None,
        seed: int | None = None,
        scheduler: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """A PIL image.

        >>> client.text_to_image("An astronaut riding a horse on the moon.").save("astronaut.png")
        """
        parameters = p.params(
            negative_prompt=negative_prompt,
            height=height,
            width=width,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            seed=seed,
            scheduler=scheduler,
            **kwargs,
        )
        body = p.inputs_body(prompt, parameters)
        return pil_image((await self._call("text-to-image", body, model=model)).content)

    async def zero_shot_image_classification(
        self,
        image: ContentT,
        labels: list[str] | None = None,
        *,
        model: str | None = None,
        candidate_labels: list[str] | None = None,
        hypothesis_template: str | None = None,
    ) -> list[Label]:
        """>>> client.zero_shot_image_classification("cat.jpg", ["cat", "dog"])[0]["label"]
        'cat'
        """
        parameters = {
            "candidate_labels": p.join_labels(candidate_labels or labels or []),
            **p.params(hypothesis_template=hypothesis_template),
        }
        body = {"image": b64encode(await self._binary(image)), "parameters": parameters}
        return p.expect_list(await self._call_json("zero-shot-image-classification", body, model=model))

    async def visual_question_answering(
        self, image: ContentT, question: str, *, model: str | None = None, top_k: int | None = None
    ) -> list[VisualQuestionAnsweringOutput]:
        """>>> client.visual_question_answering("lena.png", "Who's in the picture?")[0]["answer"]
        'woman'
        """
        body = p.with_parameters(
            {"question": question, "image": b64encode(await self._binary(image))}, p.params(top_k=top_k)
        )
        return p.expect_list(await self._call_json("visual-question-answering", body, model=model))

    async def document_question_answering(
        self,
        image: ContentT,
        question: str,
        *,
        model: str | None = None,
        top_k: int | None = None,
        doc_stride: int | None = None,
        max_answer_len: int | None = None,
        max_seq_len: int | None = None,
        max_question_len: int | None = None,
        handle_impossible_answer: bool | None = None,
        lang: str | None = None,
        word_boxes: list[Any] | None = None,
    ) -> list[DocumentQuestionAnsweringOutput]:
        """>>> client.document_question_answering("invoice.png", "What is the invoice number?")[0]["answer"]
        'us-001'
        """
        parameters = p.params(
            top_k=top_k,
            doc_stride=doc_stride,
            max_answer_len=max_answer_len,
            max_seq_len=max_seq_len,
            max_question_len=max_question_len,
            handle_impossible_answer=handle_impossible_answer,
            lang=lang,
            word_boxes=word_boxes,
        )
        body = p.with_parameters(
            {"question": question, "image": b64encode(await self._binary(image))}, parameters
        )
        return p.expect_list(await self._call_json("document-question-answering", body, model=model))
