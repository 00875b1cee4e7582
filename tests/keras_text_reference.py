#!/usr/bin/env python3
"""Keras 2's text preprocessing, re-implemented from its documented behaviour, as the reference
for attnkit's data pipeline (tests/test_data.cpp). Keras itself is not needed: its
text_to_word_sequence is Python's str.lower and str.translate, which are used here as they are.

    keras_text_reference.py REQUEST.json

REQUEST is a JSON object: "texts" (a list of strings), "num_words" (0 for all), "maxlen", and
optionally "filters" (Keras's default when absent). Prints a JSON object: "word_sequences" (each
text's words), "document_count", "words" and "counts" (the vocabulary in index order),
"sequences" (texts_to_sequences) and "padded" (pad_sequences with maxlen, "pre", "pre", 0).
"""
import json
import sys

KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'


def text_to_word_sequence(text, filters=KERAS_FILTERS, split=" "):
    # keras.preprocessing.text.text_to_word_sequence with lower=True.
    text = text.lower()
    text = text.translate(str.maketrans({c: split for c in filters}))
    return [word for word in text.split(split) if word]


class Tokenizer:
    # keras.preprocessing.text.Tokenizer, without oov_token, char_level or word_docs.
    def __init__(self, num_words=None, filters=KERAS_FILTERS):
        self.num_words = num_words
        self.filters = filters
        self.document_count = 0
        self.word_counts = {}  # insertion order: the order of first appearance
        self.word_index = {}

    def fit_on_texts(self, texts):
        for text in texts:
            self.document_count += 1
            for word in text_to_word_sequence(text, self.filters):
                self.word_counts[word] = self.word_counts.get(word, 0) + 1
        ranked = list(self.word_counts.items())
        ranked.sort(key=lambda item: item[1], reverse=True)  # stable: ties keep first appearance
        self.word_index = {word: i for i, (word, _) in enumerate(ranked, start=1)}

    def texts_to_sequences(self, texts):
        sequences = []
        for text in texts:
            sequence = []
            for word in text_to_word_sequence(text, self.filters):
                index = self.word_index.get(word)
                if index is not None and not (self.num_words and index >= self.num_words):
                    sequence.append(index)
            sequences.append(sequence)
        return sequences


def pad_sequences(sequences, maxlen, padding="pre", truncating="pre", value=0):
    # keras.preprocessing.sequence.pad_sequences for lists of ints.
    padded = []
    for sequence in sequences:
        kept = sequence[-maxlen:] if truncating == "pre" else sequence[:maxlen]
        fill = [value] * (maxlen - len(kept))
        padded.append(fill + kept if padding == "pre" else kept + fill)
    return padded


def main():
    with open(sys.argv[1], encoding="utf-8") as file:
        request = json.load(file)
    texts = request["texts"]
    filters = request.get("filters", KERAS_FILTERS)
    tokenizer = Tokenizer(request["num_words"] or None, filters)
    tokenizer.fit_on_texts(texts)
    sequences = tokenizer.texts_to_sequences(texts)
    words = sorted(tokenizer.word_index, key=tokenizer.word_index.get)
    json.dump({
        "word_sequences": [text_to_word_sequence(text, filters) for text in texts],
        "document_count": tokenizer.document_count,
        "words": words,
        "counts": [tokenizer.word_counts[word] for word in words],
        "sequences": sequences,
        "padded": pad_sequences(sequences, request["maxlen"]),
    }, sys.stdout)


if __name__ == "__main__":
    main()
