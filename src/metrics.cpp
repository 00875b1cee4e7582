// Confusion matrix, classification report and Cohen's kappa (see metrics.h).
#include "attnkit/metrics.h"

#include <cstdio>

#include "attnkit/error.h"

namespace attnkit::metrics {

std::int64_t ConfusionMatrix::total() const {
  std::int64_t sum = 0;
  for (const std::int64_t c : counts) sum += c;
  return sum;
}

ConfusionMatrix confusion_matrix(const std::vector<int>& truth, const std::vector<int>& predicted, int classes) {
  ATTNKIT_CHECK(truth.size() == predicted.size(), "confusion_matrix: ", truth.size(), " true labels but ",
                predicted.size(), " predictions");
  ATTNKIT_CHECK(classes > 0, "confusion_matrix: classes must be positive");
  ConfusionMatrix m{classes, std::vector<std::int64_t>(static_cast<std::size_t>(classes * classes), 0)};
  for (std::size_t i = 0; i < truth.size(); ++i) {
    ATTNKIT_CHECK(truth[i] >= 0 && truth[i] < classes && predicted[i] >= 0 && predicted[i] < classes,
                  "confusion_matrix: sample ", i, " has label ", truth[i], " and prediction ", predicted[i],
                  ", outside [0, ", classes, ")");
    ++m.counts[static_cast<std::size_t>(truth[i] * classes + predicted[i])];
  }
  return m;
}

namespace {
double ratio(double a, double b) { return b == 0 ? 0.0 : a / b; }
}  // namespace

ClassificationReport classification_report(const ConfusionMatrix& m) {
  ClassificationReport r;
  const std::int64_t total = m.total();
  std::int64_t correct = 0;
  for (int c = 0; c < m.classes; ++c) {
    std::int64_t predicted = 0, actual = 0;
    for (int k = 0; k < m.classes; ++k) {
      predicted += m.at(k, c);
      actual += m.at(c, k);
    }
    ClassScores s;
    s.precision = ratio(double(m.at(c, c)), double(predicted));
    s.recall = ratio(double(m.at(c, c)), double(actual));
    s.f1 = ratio(2 * s.precision * s.recall, s.precision + s.recall);
    s.support = actual;
    correct += m.at(c, c);
    r.per_class.push_back(s);
  }
  for (const ClassScores& s : r.per_class) {
    r.macro_average.precision += s.precision / m.classes;
    r.macro_average.recall += s.recall / m.classes;
    r.macro_average.f1 += s.f1 / m.classes;
    const double weight = ratio(double(s.support), double(total));
    r.weighted_average.precision += s.precision * weight;
    r.weighted_average.recall += s.recall * weight;
    r.weighted_average.f1 += s.f1 * weight;
  }
  r.macro_average.support = r.weighted_average.support = total;
  r.accuracy = ratio(double(correct), double(total));
  return r;
}

std::string ClassificationReport::str() const {
  char line[128];
  std::string text = "              precision    recall  f1-score   support\n\n";
  for (std::size_t c = 0; c < per_class.size(); ++c) {
    const ClassScores& s = per_class[c];
    std::snprintf(line, sizeof line, "%12zu  %9.2f %9.2f %9.2f %9lld\n", c, s.precision, s.recall, s.f1,
                  static_cast<long long>(s.support));
    text += line;
  }
  std::snprintf(line, sizeof line, "\n%12s  %9s %9s %9.2f %9lld\n", "accuracy", "", "", accuracy,
                static_cast<long long>(macro_average.support));
  text += line;
  for (const auto& [name, s] : {std::make_pair("macro avg", macro_average), std::make_pair("weighted avg", weighted_average)}) {
    std::snprintf(line, sizeof line, "%12s  %9.2f %9.2f %9.2f %9lld\n", name, s.precision, s.recall, s.f1,
                  static_cast<long long>(s.support));
    text += line;
  }
  return text;
}

double cohen_kappa(const ConfusionMatrix& m) {
  const double total = double(m.total());
  ATTNKIT_CHECK(total > 0, "cohen_kappa: the confusion matrix is empty");
  double observed = 0, expected = 0;
  for (int c = 0; c < m.classes; ++c) {
    double row = 0, column = 0;
    for (int k = 0; k < m.classes; ++k) {
      row += double(m.at(c, k));
      column += double(m.at(k, c));
    }
    observed += double(m.at(c, c)) / total;
    expected += (row / total) * (column / total);
  }
  return expected == 1 ? 0.0 : (observed - expected) / (1 - expected);
}

std::vector<int> argmax_rows(const Tensor& scores) {
  ATTNKIT_CHECK(scores.dim() == 2 && scores.size(1) > 0, "argmax_rows: scores must be [N, C], got ", scores.describe());
  const std::vector<double> v = scores.to_vector<double>();
  const std::int64_t n = scores.size(0), c = scores.size(1);
  std::vector<int> best(static_cast<std::size_t>(n), 0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t k = 1; k < c; ++k)
      if (v[static_cast<std::size_t>(i * c + k)] > v[static_cast<std::size_t>(i * c + best[static_cast<std::size_t>(i)])])
        best[static_cast<std::size_t>(i)] = static_cast<int>(k);
  return best;
}

}  // namespace attnkit::metrics
