"""Output safety: what every command checks before it writes, and how its write failures read.

    check_separate([out], [source, checkpoint])      # an output never is, holds or lies in an input
    claim_folder(out, record, overwrite=False)       # resume only what the same kind of run wrote
    claim_run_folder(folder, resume=..., overwrite=...)   # `train`: never two runs in one folder
    check_writable(out)                              # a read-only / full disk fails before long work
    claim_file(out.json, "score")                   # a single file: new, or one this command wrote (its mark)
    claim_output(out.json, "score")                 # claim_file, a writable folder, dead temp files swept
    plain_file(out)                                  # no link, folder, device or pipe where a file goes
    plain_folder(out)                                # no dangling link, file, device or pipe where a folder goes
    with writing(out): ...                           # ENOSPC, EACCES, EROFS -> one-line OutputError
    sweep_temp(out, recursive=True)                  # temp files a killed run left (`temp`)
    warn_other_classes(labels, spec.classes, ...)    # a folder's record names other classes: one warning
    with temp_folder("view") as scratch: ...         # a scratch folder, removed after; a killed run's by the next
    with temp_inside(scratch): ...                   # a library's own temp files (onnxruntime's) go in there

Modules: `temp` (our temp names, sweeping), `checks` (overlap, writability, write errors), `provenance`
(the `.rs-effnet.json` record of resumable outputs, training folders).
"""

from robosat_effnet.outputs.checks import (
    WRITTEN_BY,
    check_separate,
    check_writable,
    claim_file,
    claim_output,
    mark,
    mark_text,
    plain_file,
    plain_folder,
    write_error,
    write_text,
    writing,
)
from robosat_effnet.outputs.provenance import (
    RECORD,
    claim_folder,
    claim_run_folder,
    file_digest,
    has_files,
    make_record,
    read_record,
    recorded_classes,
    remove_tiles,
    run_files,
    start_run_folder,
    warn_other_classes,
)
from robosat_effnet.outputs.temp import (
    TEMP_PREFIX,
    is_temp,
    sweep_temp,
    sweep_temp_folders,
    temp_folder,
    temp_inside,
    temp_path,
)

__all__ = [
    "RECORD",
    "TEMP_PREFIX",
    "WRITTEN_BY",
    "check_separate",
    "check_writable",
    "claim_file",
    "claim_output",
    "claim_folder",
    "claim_run_folder",
    "file_digest",
    "has_files",
    "is_temp",
    "mark",
    "mark_text",
    "make_record",
    "plain_file",
    "plain_folder",
    "read_record",
    "recorded_classes",
    "remove_tiles",
    "run_files",
    "start_run_folder",
    "sweep_temp",
    "sweep_temp_folders",
    "temp_folder",
    "temp_inside",
    "temp_path",
    "warn_other_classes",
    "write_error",
    "write_text",
    "writing",
]
