// Filled by the segmenter.
