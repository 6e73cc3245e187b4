"""What the home page shows of the folders feature's commands: the signals its forms
and its delete confirmation keep, which the commands set and clear."""

from stario.datastar.format import SignalValue

# The new-folder form's name; the rename form's folder and name (sent with the
# page's requests, so they are not local); and the deletion being confirmed
# (local: `_doomed` is the question, the ids what it would remove).
FOLDER_SIGNALS: dict[str, SignalValue] = {
    "newFolder": "",
    "folderRenameId": "",
    "folderRenameName": "",
    "_folderRenaming": "",
    "_doomed": "",
    "_doomedIds": [],
    "_doomedFolders": [],
    "_moveTo": "root",
}
# What a finished deletion leaves: no question, nothing picked.
DOOMED_CLEARED: dict[str, SignalValue] = {
    "_doomed": "",
    "_doomedIds": [],
    "_doomedFolders": [],
}
