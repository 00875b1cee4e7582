#!/usr/bin/env python3
"""Segments every review of the waimai_10k CSV (columns label,review) with Python's jieba, with
and without the HMM, and writes one JSON object per review to the output file:
{"text": review, "hmm": jieba.lcut(review), "no_hmm": jieba.lcut(review, HMM=False)}.
The reference for the C++ segmenter's test.

Usage: jieba_reference.py REVIEWS_CSV OUTPUT_JSONL"""
import csv
import json
import logging
import sys

import jieba


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    csv_path, output_path = sys.argv[1], sys.argv[2]
    jieba.setLogLevel(logging.WARNING)  # jieba announces its dictionary loading on stderr
    # newline="" keeps line breaks inside quoted reviews as they are in the file.
    with open(csv_path, newline="", encoding="utf-8") as source, \
            open(output_path, "w", encoding="utf-8") as output:
        reader = csv.reader(source)
        header = next(reader)
        if header != ["label", "review"]:
            sys.exit(f"{csv_path}: expected the header label,review, got {header}")
        for row in reader:
            if len(row) != 2:
                sys.exit(f"{csv_path} line {reader.line_num}: expected 2 fields, got {len(row)}")
            review = row[1]
            record = {"text": review, "hmm": jieba.lcut(review),
                      "no_hmm": jieba.lcut(review, HMM=False)}
            output.write(json.dumps(record, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
