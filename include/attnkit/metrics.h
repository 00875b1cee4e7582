// attnkit/metrics.h: evaluating a classifier as scikit-learn does: the confusion matrix, the
// classification report (precision, recall, F1 and support per class, with macro and weighted
// averages) and Cohen's kappa.
//
//   precision_c = TP_c / (TP_c + FP_c)     recall_c = TP_c / (TP_c + FN_c)
//   f1_c = 2 precision_c recall_c / (precision_c + recall_c)   (0 where a denominator is 0)
//   macro average: the mean over classes; weighted average: weighted by support
//   kappa = (p_o - p_e) / (1 - p_e), p_o the observed agreement, p_e the agreement expected by
//   chance from the row and column totals
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attnkit/tensor.h"

namespace attnkit::metrics {

// counts[t * classes + p]: samples of true class t predicted as p.
struct ConfusionMatrix {
  int classes = 0;
  std::vector<std::int64_t> counts;
  std::int64_t at(int truth, int predicted) const {
    return counts[static_cast<std::size_t>(truth * classes + predicted)];
  }
  std::int64_t total() const;
};

ConfusionMatrix confusion_matrix(const std::vector<int>& truth, const std::vector<int>& predicted, int classes);

struct ClassScores {
  double precision = 0, recall = 0, f1 = 0;
  std::int64_t support = 0;
};

struct ClassificationReport {
  std::vector<ClassScores> per_class;
  ClassScores macro_average, weighted_average;
  double accuracy = 0;
  // scikit-learn's classification_report text.
  std::string str() const;
};

ClassificationReport classification_report(const ConfusionMatrix& matrix);
double cohen_kappa(const ConfusionMatrix& matrix);

// The index of the largest value in each row of [N, C] scores.
std::vector<int> argmax_rows(const Tensor& scores);

}  // namespace attnkit::metrics
