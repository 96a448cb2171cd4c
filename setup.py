"""The compiled stages, which pyproject.toml cannot declare yet (setuptools calls its
``ext-modules`` table experimental). Everything else is in pyproject.toml.

Each is one C pass over every entry's text, where the Python steps it replaces cost most
of an entry's time (see the opening comment of each file). Installing needs a C compiler
and the Python headers; the Dockerfile's build stage installs gcc.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(f"monitor.{name}", [f"monitor/{name}.c"], extra_compile_args=["-O2"])
        for name in ("_htmltext", "_prefilter", "_simhash", "_textnorm", "_words")
    ]
)
