// Filled by the text pipeline.
