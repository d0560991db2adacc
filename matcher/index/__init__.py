"""The advisory index: ranges compiled into interval tables of version keys, stored in LMDB."""
