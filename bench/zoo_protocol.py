"""What the zoo's peers (bench/torch_zoo.py, bench/keras_zoo.py) share with
build/bench/attnkit_bench_zoo_epochs: the sizes of the synthetic reviews, the models and which
of them keep their embedding frozen (src/zoo.cpp, MODELS.md)."""

VOCABULARY, STEPS, EMBEDDING, REVIEWS = 6000, 20, 32, 9589
FROZEN = {"textcnn", "attention", "bilstm-attention", "bigru-attention", "attention3"}
NAMES = ["mlp", "cnn", "rnn", "lstm", "gru", "cnn-lstm", "bilstm", "textcnn", "attention", "bilstm-attention",
         "bigru-attention", "attention3", "textcnn-trainable", "attention-trainable", "bilstm-attention-trainable",
         "bigru-attention-trainable", "attention3-trainable", "transformer"]
