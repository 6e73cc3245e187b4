"""The folders table: an account's tree. Every file has one folder (`files.folder_id`;
'' is the account's root, which has no row); a folder has a parent ('' at the top), a
name unique among its parent's folders and files ignoring case, and counters of the
files directly in it kept by the catalog's triggers (app/catalog/migrations/m0005).
Totals over a subtree, paths and the checks of a move are worked out here."""
