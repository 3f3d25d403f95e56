import subprocess
import sys


def test_import_inferd_pulls_no_runtime_or_server():
    code = (
        "import sys, inferd, inferd.tasks, inferd.backends, inferd.catalogue, inferd.cli;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'starlette', 'uvicorn', 'ray') or m.startswith('inferd.server'));"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_public_api_is_sorted():
    import inferd

    assert list(inferd.__all__) == sorted(inferd.__all__)
