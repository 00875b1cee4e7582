// attnkit/text.h: the text and sentiment part's public API in one include (libattnkit_text,
// attnkit::text, over the core): UTF-8, the jieba segmenter, the CSV reader and the Keras-style
// text pipeline, the model zoo and the sentiment reports.
#pragma once

#include "attnkit/attnkit.h"
#include "attnkit/data.h"
#include "attnkit/jieba.h"
#include "attnkit/sentiment.h"
#include "attnkit/utf8.h"
#include "attnkit/zoo.h"
