"""genval: is this distilled student good enough to replace its teacher, and where does it fall short?"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("genval")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"

from genval.errors import GenvalError  # noqa: E402

# `genval.run(config_path)` is the library twin of `genval run`. The name is also the module
# genval/run.py (the run folder), and importing a submodule rebinds the package attribute to
# it, so the module itself is made callable (see the end of genval/run.py): one name, both uses.
from genval import run  # noqa: E402

__all__ = ["GenvalError", "__version__", "run"]
