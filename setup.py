"""Build the Cython hot path (ext/*.pyx) into mini_llm, or a pure wheel with MINI_LLM_NO_EXTENSIONS=1."""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

_flags: dict[str, Any] = runpy.run_path(os.path.join("src", "mini_llm", "_flags.py"))
parse_flag = _flags["parse_flag"]

NO_EXTENSIONS = (
    parse_flag("MINI_LLM_NO_EXTENSIONS", os.environ.get("MINI_LLM_NO_EXTENSIONS"))
    or sys.implementation.name != "cpython"
)
ANNOTATE = parse_flag("MINI_LLM_CYTHON_ANNOTATE", os.environ.get("MINI_LLM_CYTHON_ANNOTATE"))
TRACE = parse_flag("MINI_LLM_CYTHON_TRACE", os.environ.get("MINI_LLM_CYTHON_TRACE"))
# Built into mini_llm.hotpath, next to their pure twins; only mini_llm.hotpath imports them.
STEMS = ("_sse_c", "_buffer_c", "_http_c")
FIX = "install a C compiler (e.g. apt-get install gcc python3-dev) or set MINI_LLM_NO_EXTENSIONS=1"


class LoudBuildExt(build_ext):
    """Fail the install with one clear line instead of a silently slow pure install."""

    def run(self) -> None:
        try:
            super().run()
        except (CCompilerError, ExecError, PlatformError, OSError) as exc:
            sys.exit(f"mini-llm: building the Cython hot path failed ({exc}); {FIX}")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except (CCompilerError, ExecError, PlatformError, OSError) as exc:
            sys.exit(f"mini-llm: compiling {ext.name} failed ({exc}); {FIX}")


def extensions() -> list[Extension]:
    if NO_EXTENSIONS:
        print("mini-llm: Pure-Python build (MINI_LLM_NO_EXTENSIONS)", file=sys.stderr)
        return []
    from Cython.Build import cythonize

    print("mini-llm: Accelerated build (Cython hot path)", file=sys.stderr)
    macros = [("CYTHON_TRACE", "1")] if TRACE else []
    modules = [
        Extension(f"mini_llm.hotpath.{stem}", [f"ext/{stem}.pyx"], define_macros=macros, extra_compile_args=["-O3"])
        for stem in STEMS
    ]
    directives = {"language_level": 3, "embedsignature": True, "linetrace": TRACE}
    return cythonize(modules, compiler_directives=directives, annotate=ANNOTATE)


setup(ext_modules=extensions(), cmdclass={"build_ext": LoudBuildExt})
