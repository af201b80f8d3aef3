"""The `audio-oracles` command: one entry point over the oracles, the pipeline and the sandbox."""
