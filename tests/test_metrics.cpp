// Metrics: a small case worked by hand, scikit-learn's report layout, and kappa's extremes.
#include <gtest/gtest.h>

#include "attnkit/metrics.h"
#include "support.h"

namespace attnkit {
namespace {

// 10 samples: truth 0 0 0 0 0 0 1 1 1 1, predicted 0 0 0 0 1 1 1 1 1 0.
// Class 0: TP 4, FP 1, FN 2 -> precision 4/5, recall 4/6; class 1: TP 3, FP 2, FN 1 -> 3/5, 3/4.
const std::vector<int> kTruth{0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
const std::vector<int> kPredicted{0, 0, 0, 0, 1, 1, 1, 1, 1, 0};

TEST(Metrics, ConfusionMatrixAndReportByHand) {
  const metrics::ConfusionMatrix m = metrics::confusion_matrix(kTruth, kPredicted, 2);
  EXPECT_EQ(m.counts, (std::vector<std::int64_t>{4, 2, 1, 3}));
  const metrics::ClassificationReport r = metrics::classification_report(m);
  EXPECT_DOUBLE_EQ(r.per_class[0].precision, 0.8);
  EXPECT_DOUBLE_EQ(r.per_class[0].recall, 4.0 / 6);
  EXPECT_DOUBLE_EQ(r.per_class[0].f1, 2 * 0.8 * (4.0 / 6) / (0.8 + 4.0 / 6));
  EXPECT_DOUBLE_EQ(r.per_class[1].precision, 0.6);
  EXPECT_DOUBLE_EQ(r.per_class[1].recall, 0.75);
  EXPECT_EQ(r.per_class[0].support, 6);
  EXPECT_DOUBLE_EQ(r.accuracy, 0.7);
  EXPECT_DOUBLE_EQ(r.macro_average.precision, 0.7);
  EXPECT_DOUBLE_EQ(r.weighted_average.recall, 0.6 * (4.0 / 6) + 0.4 * 0.75);
  // p_o = 0.7; p_e = 0.6 * 0.5 + 0.4 * 0.5 = 0.5; kappa = 0.2 / 0.5.
  EXPECT_DOUBLE_EQ(metrics::cohen_kappa(m), 0.4);
}

TEST(Metrics, ReportTextHasScikitLearnLayout) {
  const auto r = metrics::classification_report(metrics::confusion_matrix(kTruth, kPredicted, 2));
  EXPECT_EQ(r.str(),
            "              precision    recall  f1-score   support\n"
            "\n"
            "           0       0.80      0.67      0.73         6\n"
            "           1       0.60      0.75      0.67         4\n"
            "\n"
            "    accuracy                           0.70        10\n"
            "   macro avg       0.70      0.71      0.70        10\n"
            "weighted avg       0.72      0.70      0.70        10\n");
}

TEST(Metrics, KappaExtremesAndArgmax) {
  const std::vector<int> truth{0, 1, 0, 1};
  EXPECT_DOUBLE_EQ(metrics::cohen_kappa(metrics::confusion_matrix(truth, truth, 2)), 1.0);
  EXPECT_DOUBLE_EQ(metrics::cohen_kappa(metrics::confusion_matrix(truth, {1, 0, 1, 0}, 2)), -1.0);
  // A constant prediction agrees by chance only.
  EXPECT_DOUBLE_EQ(metrics::cohen_kappa(metrics::confusion_matrix(truth, {0, 0, 0, 0}, 2)), 0.0);
  Tensor scores = Tensor::from_vector<float>({0.1f, 0.9f, 0.7f, 0.3f, 0.2f, 0.5f}, {3, 2});
  EXPECT_EQ(metrics::argmax_rows(scores), (std::vector<int>{1, 0, 1}));
  EXPECT_ATTNKIT_ERROR(metrics::confusion_matrix({0, 2}, {0, 1}, 2), "sample 1 has label 2");
}

}  // namespace
}  // namespace attnkit
