"""Find and read the two Sign-MNIST CSVs in an archive or a folder.

Mirrors differ in packing: the upstream Kaggle zip nests the CSVs in folders next to PNG
charts, a local mirror may hold them at the top level or as `.csv.gz`. The CSVs are found
by file name anywhere inside.
"""

import gzip
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fingerspell.data.errors import DataError

SPLIT_FILES: dict[str, str] = {"train": "sign_mnist_train.csv", "test": "sign_mnist_test.csv"}
_FIX = "re-download it (dvc repro) or point the DVC remote at a good mirror (make mirror MIRROR=...)"


def read_split_csvs(source: Path) -> dict[str, tuple[str, bytes]]:
    """Return `{split: (display name, csv bytes)}` for train and test.

    Args:
        source: a `.zip` archive or a folder holding the CSVs (plain or `.csv.gz`).

    Raises:
        DataError: the source is missing, corrupt, or lacks one of the CSVs.
    """
    if not source.exists():
        raise DataError(f"{source}: no such file or folder; run 'dvc repro' to fetch the data set first")
    if source.is_dir():
        return _read_folder(source)
    return _read_zip(source)


def _read_zip(path: Path) -> dict[str, tuple[str, bytes]]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = {Path(info.filename).name: info for info in archive.infolist() if not info.is_dir()}
            chosen: dict[str, zipfile.ZipInfo] = {}
            for split, filename in SPLIT_FILES.items():
                info = members.get(filename) or members.get(filename + ".gz")
                if info is None:
                    raise DataError(
                        f"{path}: archive has no {filename}; it is not the Sign-MNIST archive, {_FIX}"
                    )
                chosen[split] = info
            # zlib releases the GIL: inflate both members at once
            with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
                raws = dict(zip(chosen, pool.map(archive.read, chosen.values()), strict=True))
            found: dict[str, tuple[str, bytes]] = {}
            for split, info in chosen.items():
                name = f"{path.name}:{info.filename}"
                raw = raws[split]
                found[split] = (name, _gunzip(raw, name) if info.filename.endswith(".gz") else raw)
            return found
    except zipfile.BadZipFile as err:
        raise DataError(f"{path}: not a readable zip archive ({err}); {_FIX}") from err
    except (EOFError, zlib.error, OSError) as err:
        raise DataError(f"{path}: archive is truncated or corrupt ({err}); {_FIX}") from err


def _read_folder(folder: Path) -> dict[str, tuple[str, bytes]]:
    found: dict[str, tuple[str, bytes]] = {}
    for split, filename in SPLIT_FILES.items():
        candidates = sorted(folder.rglob(filename)) + sorted(folder.rglob(filename + ".gz"))
        if not candidates:
            raise DataError(f"{folder}: no {filename} (or {filename}.gz) in this folder; {_FIX}")
        path = candidates[0]
        raw = path.read_bytes()
        found[split] = (str(path), _gunzip(raw, str(path)) if path.suffix == ".gz" else raw)
    return found


def _gunzip(raw: bytes, name: str) -> bytes:
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{name}: gzip data is truncated or corrupt ({err}); {_FIX}") from err
