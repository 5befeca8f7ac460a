// SVG line charts: well-formed XML (parsed back with Boost's XML reader), one polyline per series
// (split at gaps), axis ticks at nice values, escaped labels; console sparklines.
#include <gtest/gtest.h>

#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <cmath>
#include <sstream>

#include "core/check.h"
#include "recipes/plot.h"

namespace r1kit::recipes {
namespace {

namespace pt = boost::property_tree;

pt::ptree parse_svg(const std::string& svg) {
  std::istringstream in(svg);
  pt::ptree tree;
  pt::read_xml(in, tree);  // throws on malformed XML
  return tree;
}

int count_children(const pt::ptree& node, const std::string& tag) {
  int n = 0;
  for (const auto& [name, child] : node) {
    if (name == tag) ++n;
    n += count_children(child, tag);
  }
  return n;
}

std::vector<std::string> texts(const pt::ptree& node) {
  std::vector<std::string> out;
  for (const auto& [name, child] : node) {
    if (name == "text") out.push_back(child.get_value<std::string>());
    for (auto& t : texts(child)) out.push_back(t);
  }
  return out;
}

TEST(SvgPlot, WellFormedWithAxesTicksAndLegend) {
  PlotSeries reward{"reward <total> & more", {1, 2, 3, 4, 5}, {0.1, 0.3, 0.5, 0.8, 0.9}};
  PlotSeries length{"length", {1, 2, 3, 4, 5}, {0.2, 0.2, 0.3, 0.4, 0.6}};
  PlotOptions o;
  o.title = "GRPO \"reward\"";
  o.y_label = "mean reward";
  const std::string svg = render_line_chart({reward, length}, o);
  const pt::ptree tree = parse_svg(svg);
  ASSERT_EQ(tree.count("svg"), 1u);
  EXPECT_EQ(count_children(tree, "polyline"), 2);
  const auto t = texts(tree);
  auto has = [&](const std::string& s) { return std::find(t.begin(), t.end(), s) != t.end(); };
  EXPECT_TRUE(has("GRPO \"reward\""));        // title, unescaped by the parser
  EXPECT_TRUE(has("reward <total> & more"));  // legend
  EXPECT_TRUE(has("step"));                   // x label
  EXPECT_TRUE(has("mean reward"));            // y label
  EXPECT_TRUE(has("1") && has("5"));          // x ticks
  EXPECT_TRUE(has("0.0") && has("0.2") && has("1.0"));  // y ticks (step 0.2)
}

TEST(SvgPlot, GapsSplitLinesAndEmptyDataSaysSo) {
  PlotSeries s{"acc", {1, 2, 3, 4, 5}, {0.1, 0.2, NAN, 0.4, 0.5}};
  EXPECT_EQ(count_children(parse_svg(render_line_chart({s}, {})), "polyline"), 2);
  const auto t = texts(parse_svg(render_line_chart({}, {})));
  EXPECT_NE(std::find(t.begin(), t.end(), "no data"), t.end());
  // A single point and a constant series still render (degenerate ranges widened).
  PlotSeries one{"one", {3}, {7}};
  EXPECT_EQ(count_children(parse_svg(render_line_chart({one}, {})), "circle"), 1);
  PlotSeries flat{"flat", {1, 2, 3}, {2, 2, 2}};
  EXPECT_NO_THROW(parse_svg(render_line_chart({flat}, {})));
  PlotSeries bad{"bad", {1, 2}, {1}};
  EXPECT_THROW(render_line_chart({bad}, {}), Error);
}

TEST(SvgPlot, NiceTicks) {
  const auto r = nice_ticks(0, 1, 5);
  ASSERT_EQ(r.size(), 6u);  // step 0.2
  for (size_t i = 0; i < r.size(); ++i) EXPECT_NEAR(r[i], 0.2 * i, 1e-12);
  const auto t = nice_ticks(0, 200, 6);
  ASSERT_EQ(t.size(), 5u);  // step 50
  EXPECT_DOUBLE_EQ(t[1] - t[0], 50);
  const auto u = nice_ticks(13, 87, 6);  // raw step 74/6 = 12.3 rounds up to 20
  EXPECT_DOUBLE_EQ(u.front(), 20);
  EXPECT_DOUBLE_EQ(u[1] - u[0], 20);
  for (double v : u) EXPECT_TRUE(v >= 13 && v <= 87);
}

TEST(Sparkline, ScalesToMinAndMax) {
  EXPECT_EQ(sparkline({0, 1, 2, 3, 4, 5, 6, 7}), "▁▂▃▄▅▆▇█");
  EXPECT_EQ(sparkline({}), "");
  EXPECT_EQ(sparkline({2, 2}), "▄▄");
  // 100 values into 10 characters: averaged buckets, still rising.
  std::vector<double> v;
  for (int i = 0; i < 100; ++i) v.push_back(i);
  const std::string s = sparkline(v, 10);
  EXPECT_EQ(s.substr(0, 3), "▁");
  EXPECT_EQ(s.substr(s.size() - 3), "█");
  EXPECT_EQ(s.size(), 30u);  // 3 bytes per bar
}

}  // namespace
}  // namespace r1kit::recipes
