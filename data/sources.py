"""Load one split of a dataset from a local file/folder or the Hub, through `datasets`.

Failures become one DataError sentence that says what to change; the token, when needed, comes
from the environment (HF_TOKEN) through huggingface_hub itself.
"""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

from core.errors import DataError

FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}
_SPLITS = re.compile(r"(?:Should be one of|Available splits?:?)\s*\[?([^\]\n]*)\]?", re.IGNORECASE)


def is_local(source: str) -> bool:
    path = Path(source).expanduser()
    return path.exists() or path.suffix.lower() in FILE_BUILDERS or source.startswith((".", "/", "~"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:240] if text else type(exc).__name__


def _chain(exc: BaseException):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def _root(exc: BaseException) -> BaseException:
    *_, last = _chain(exc)
    return last


def _check_utf8(path: Path) -> None:
    """pyarrow accepts invalid UTF-8 and fails later on read: check text files up front (one fast pass)."""
    decoder = __import__("codecs").getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as f:
        while chunk := f.read(4 * 2**20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                hint = " (it looks like UTF-16)" if offset == 0 and chunk[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
                raise DataError(
                    f"{path.name} is not UTF-8 text{hint} (bad byte at offset {offset + exc.start}): "
                    "re-save it with UTF-8 encoding."
                ) from exc
            offset += len(chunk)


def _csv_separator(path: Path) -> str | None:
    """Semicolon- or tab-separated files are common exports: detect them instead of mis-reading."""
    import csv

    with open(path, encoding="utf-8-sig", newline="") as f:
        sample = f.read(64 * 1024)
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return None
    return dialect.delimiter if dialect.delimiter != "," else None


def _broken_json(path: Path) -> str | None:
    """Where a JSON / JSON Lines file stops parsing, for the error message."""
    with open(path, encoding="utf-8-sig", errors="strict") as f:
        text = f.read(64 * 2**20)
    if text.lstrip()[:1] in ("[", "{") and path.suffix.lower() == ".json":
        try:
            json.loads(text)
        except ValueError as exc:
            if not (text.lstrip().startswith("{") and "Extra data" in str(exc)):
                return f"the file is not valid JSON ({exc.msg}: line {exc.lineno}, column {exc.colno})"
        else:
            return None
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                value = json.loads(line)
            except ValueError as exc:
                return f"line {number} is not valid JSON ({exc.msg}: column {exc.colno})"
            if not isinstance(value, dict):
                return f"line {number} is a JSON {type(value).__name__}, not an object with named columns"
    return None


def _single_list_field(path: Path) -> str | None:
    """A .json file holding one object whose only list value is the rows: {"data": [...]} -> "data"."""
    if path.stat().st_size > 512 * 2**20:
        return None
    with open(path, encoding="utf-8-sig") as f:
        head = f.read(1).strip()
        if head != "{":
            return None
        f.seek(0)
        try:
            obj = json.load(f)
        except ValueError:
            return None
    lists = [k for k, v in obj.items() if isinstance(v, list) and v and isinstance(v[0], dict)]
    return lists[0] if len(lists) == 1 else None


def _file_error(path: Path, builder: str, exc: BaseException) -> DataError:
    for cause in _chain(exc):
        if isinstance(cause, UnicodeDecodeError):
            return DataError(f"{path.name} is not UTF-8 text (byte {cause.start}): re-save it with UTF-8 encoding.")
    text = " ".join(_first_line(c) for c in _chain(exc)).lower()
    root = _first_line(_root(exc)).rstrip(".").replace(". ", "; ")  # the cause, as one clause of our sentence
    if "corresponds to no data" in text or "batchsize must be greater than 0" in text:
        return DataError(f"{path.name} has no rows: point the source at a file with data.")
    if type(_root(exc)).__name__ == "ParserError":
        return DataError(f"{path.name} is not valid CSV ({root}): quote fields that contain commas.")
    if builder == "json":
        try:
            broken = _broken_json(path)
        except UnicodeDecodeError as err:
            return DataError(f"{path.name} is not UTF-8 text (byte {err.start}): re-save it with UTF-8 encoding.")
        if broken:
            return DataError(f"{path.name}: {broken}; fix or delete it.")
    if any(word in text for word in ("cast", "mixed", "changed from", "schema", "couldn't cast")):
        return DataError(
            f"{path.name} has a column whose values change type between rows ({root}): "
            "make every value of a column the same type (e.g. all strings)."
        )
    if builder == "parquet":
        return DataError(f"{path.name} is not a readable Parquet file ({root}): re-export it.")
    return DataError(f"Could not read {path.name} as {builder} ({root}): check the file's format.")


def _folder_error(path: Path, exc: BaseException) -> DataError:
    for cause in _chain(exc):
        if isinstance(cause, UnicodeDecodeError):
            return DataError(
                f"A file in {path.name} is not UTF-8 text: re-save the folder's files with UTF-8 encoding."
            )
    reason = _first_line(_root(exc)).rstrip(".").replace(". ", "; ")
    return DataError(
        f"The files in the folder {path.name} could not be read as one dataset ({reason}): "
        "point data.source at one data file, or keep only files of one format and the same columns in the folder."
    )


def load_local(path: Path, split: str, subset: str | None):
    import datasets

    if path.is_dir():
        files = [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in FILE_BUILDERS]
        for file in files:  # an unreadable file in the folder is named, not a datasets traceback
            if FILE_BUILDERS[file.suffix.lower()] != "parquet" and file.stat().st_size <= 256 * 2**20:
                _check_utf8(file)
        try:
            return datasets.load_dataset(str(path), name=subset, split=split)
        except ValueError as exc:
            error = _split_error(str(path), split, exc)
            if isinstance(error, DataError):
                raise error from exc
            raise _folder_error(path, exc) from exc
        except (
            FileNotFoundError,
            datasets.exceptions.DataFilesNotFoundError,
            datasets.data_files.EmptyDatasetError,
        ) as exc:
            raise DataError(f"The folder {path} holds no data files (json, jsonl, csv, parquet, txt).") from exc
        except Exception as exc:  # noqa: BLE001 - datasets/pyarrow raise many types for unreadable files
            raise _folder_error(path, exc) from exc
    builder = FILE_BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise DataError(f"Unsupported file type {path.suffix!r}: use .json, .jsonl, .csv, .parquet or .txt.")
    if path.stat().st_size == 0 or (builder != "parquet" and not path.read_bytes()[:4096].strip()):
        raise DataError(f"The data file {path.name} is empty: point the source at a file with rows.")
    if split != "train":
        raise DataError(
            f"A single file has one split (train), not {split!r}: put held-out rows in their own file "
            "and name it in data.eval_source."
        )
    kwargs = {}
    if builder != "parquet":
        _check_utf8(path)
    if builder == "json" and path.suffix.lower() == ".json":
        field = _single_list_field(path)
        if field:
            kwargs["field"] = field
    if builder == "csv":
        sep = _csv_separator(path)
        if sep:
            kwargs["sep"] = sep
    try:
        return datasets.load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except Exception as exc:  # noqa: BLE001 - datasets/pyarrow raise many types for unreadable files
        raise _file_error(path, builder, exc) from exc


def _split_error(source: str, split: str, exc: BaseException) -> Exception:
    text = str(exc)
    if "split" not in text.lower():
        return exc
    found = _SPLITS.search(text)
    names = found.group(1).replace("'", "").strip() if found else ""
    if not names:
        try:
            import datasets

            names = ", ".join(datasets.get_dataset_split_names(source))
        except Exception:  # noqa: BLE001 - best effort for the message
            names = ""
    listing = f"; it has: {names}" if names else ""
    return DataError(f"{source} has no split {split!r}{listing}. Set data.split (or data.eval_split) to one of them.")


def load_hub(source: str, split: str, subset: str | None, revision: str | None):
    import datasets

    try:
        return datasets.load_dataset(source, name=subset, split=split, revision=revision)
    except datasets.exceptions.DatasetNotFoundError as exc:
        text = str(exc).lower()
        if "gated" in text or any(type(c).__name__ == "GatedRepoError" for c in _chain(exc)):
            raise DataError(
                f"Dataset {source!r} is gated: accept its conditions on its Hub page with your account, then sign "
                "in or set HF_TOKEN to a token of that account."
            ) from exc
        if "revision" in text:
            raise DataError(f"Dataset {source!r} has no revision {revision!r}: check data.revision.") from exc
        raise DataError(
            f"Dataset {source!r} was not found on the Hub, or it is private: check the id, or sign in / set "
            "HF_TOKEN to an account that can read it."
        ) from exc
    except ValueError as exc:
        text = str(exc)
        if "config" in text.lower() and ("not found" in text.lower() or "missing" in text.lower()):
            raise DataError(f"{source}: {_first_line(exc)} Set data.subset to one of them.") from exc
        raise _split_error(source, split, exc) from exc


_TRUE = ("1", "true", "yes", "on")


def hub_offline() -> bool:
    """HF_HUB_OFFLINE is set (huggingface_hub reads it at import; the environment may have set it since)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUE


def hub_reachable(timeout: float = 1.5) -> bool:
    """Whether the Hub (HF_ENDPOINT) accepts a connection: False offline (HF_HUB_OFFLINE) or when nothing answers
    within `timeout` seconds.  Behind a proxy the proxy decides: assumed reachable."""
    if hub_offline():
        return False
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    from huggingface_hub import constants

    scheme, _, rest = constants.ENDPOINT.partition("://")
    host = rest.split("/")[0]
    name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    try:
        socket.create_connection((name, int(port or (80 if scheme == "http" else 443))), timeout=timeout).close()
        return True
    except (OSError, ValueError):
        return False


def in_local_cache(source: str) -> bool:
    """A Hub dataset id that `datasets` can load without the Hub: prepared in its cache or downloaded to the Hub's."""
    from datasets import config
    from datasets.naming import camelcase_to_snakecase
    from huggingface_hub import constants

    *namespace, name = source.split("/")
    prepared = Path(config.HF_DATASETS_CACHE) / "___".join([*namespace, camelcase_to_snakecase(name)])
    downloaded = Path(constants.HF_HUB_CACHE) / ("datasets--" + source.replace("/", "--"))
    return prepared.is_dir() or downloaded.is_dir()


def offline_refusal(source: str) -> DataError:
    return DataError(
        f"The Hugging Face Hub could not be reached from here and {source!r} is not in the local dataset cache: "
        "use a local data file instead (upload it, or give its path)."
    )


def peek(source: str, split: str, subset: str | None, revision: str | None, rows: int, token: str | None = None):
    """A Hub dataset's first `rows` rows, streamed (nothing downloaded in full), as a `datasets.Dataset`; None
    when it cannot be had (unreachable, private, odd features): the run's own doctor then says why in full."""
    import itertools

    import datasets

    try:
        stream = datasets.load_dataset(source, name=subset, split=split, revision=revision, streaming=True, token=token)
        first = list(itertools.islice(stream, rows))
        return datasets.Dataset.from_list(first) if first else None
    except Exception:  # noqa: BLE001 - the caller treats "no sample" as "nothing to say before the run"
        return None


def load(
    source: str,
    split: str = "train",
    subset: str | None = None,
    revision: str | None = None,
    online: bool | None = None,
):
    """Return a `datasets.Dataset` for one split of a local file/folder or Hub dataset.  A Hub id fails at once,
    without a network call, when the Hub is unreachable (`online` False, or None and hub_reachable() says so)
    and the dataset is not in the local cache."""
    if not source or not source.strip():
        raise DataError("data.source is empty: give a Hub dataset id or a file path.")
    if is_local(source):
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(f"Data file {source!r} does not exist: check data.source.")
        return load_local(path, split, subset)
    if not (hub_reachable() if online is None else online) and not in_local_cache(source):
        raise offline_refusal(source)
    return load_hub(source, split, subset, revision)
