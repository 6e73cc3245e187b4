"""What the home page shows of the files feature's commands: the signals of its
rename form, which the rename command clears when it is done."""

# The page's signals for its rename form (Datastar sends those matching `^rename`).
RENAME_SIGNALS = {"renameFile": "", "renameName": ""}
