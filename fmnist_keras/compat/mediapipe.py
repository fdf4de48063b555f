"""MediaPipe's private APIs, checked on mediapipe 1.2.3 (the version `fmnist export --target
mediapipe` requires; tests/compat/ fails loudly on a change)."""

from __future__ import annotations

# MediaPipe is imported inside the functions that need it: importing this module (and `fmnist --help`) stays fast.
import sys
import types
from collections.abc import Callable

CHECKED_ON = "1.2.3"
MISSING_MODULE = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"


def metadata_writers(min_parser_version: Callable[[bytes], str]):
    """MediaPipe's metadata_writers (metadata_info, metadata_writer). Its 1.2.3 wheel lacks the
    compiled `_pywrap_metadata_version` the writer imports: a stand-in module in sys.modules
    answers with `min_parser_version` instead."""
    if MISSING_MODULE not in sys.modules:
        stand_in = types.ModuleType(MISSING_MODULE)
        stand_in.GetMinimumMetadataParserVersion = min_parser_version
        for package in ("mediapipe.tasks.cc", "mediapipe.tasks.cc.metadata", "mediapipe.tasks.cc.metadata.python"):
            sys.modules.setdefault(package, types.ModuleType(package))
        sys.modules[MISSING_MODULE] = stand_in
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_info, metadata_writer

    return metadata_info, metadata_writer


def set_general_metadata(writer, general_md) -> None:
    """add_general_info takes only a name and a description; version, author and license go
    through the private GeneralMd it wraps."""
    writer._general_md = general_md
