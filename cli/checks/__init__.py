"""The start-up checks, one module per concern: single values, combinations of flags, the data file, the
checkpoints read, the folders written, the models' sizes, and the scripts that build models themselves. Each
mistake is a UsageError whose one-line message names the flag, file or value and what would be valid."""
