// Filled by the CSV reader.
