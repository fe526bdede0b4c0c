/* The histogram figure: bins, bar heights, escaping, the threshold line,
 * tick placement and the atomic write. Expected positions are derived in the
 * comments from the plot area (x 80..700, y 70..380 in a 720x440 figure). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/eval.h"
#include "rewardc/io.h"
#include "testlib.h"

static size_t count_occurrences(const char *text, const char *needle) {
    size_t count = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) count++;
    return count;
}

static const float first_values[] = {0.0f, 0.5f, 1.0f};
static const float second_values[] = {1.0f, 1.0f, 2.0f};

static rc_histogram_figure sample_figure(void) {
    rc_histogram_figure figure = {0};
    figure.title = "chosen & rejected <dev>";
    figure.x_label = "reward";
    figure.first = (rc_histogram_series){first_values, 3, "chosen"};
    figure.second = (rc_histogram_series){second_values, 3, "rejected \"r\""};
    figure.n_bins = 4;
    figure.has_threshold = 1;
    figure.threshold = 1.5;
    return figure;
}

static void test_render(void) {
    rc_histogram_figure figure = sample_figure();
    char *svg = NULL;
    size_t len = 0;
    CHECK(rc_svg_histograms_render(&figure, &svg, &len) == RC_OK, "%s", rc_last_error());
    if (!svg) return;
    CHECK(strlen(svg) == len, "length %zu vs %zu", strlen(svg), len);
    CHECK(strncmp(svg, "<?xml", 5) == 0 && strstr(svg, "</svg>\n") != NULL, "document frame");
    /* Range [0, 2], 4 bins of 0.5: first lands in bins 0, 1, 2 and second in
     * bins 2, 2, 3 (2.0 is the top edge, kept in the last bin). Each series
     * has one legend swatch besides its bars. */
    CHECK(count_occurrences(svg, "<rect class=\"first\"") == 3 + 1, "first bars");
    CHECK(count_occurrences(svg, "<rect class=\"second\"") == 2 + 1, "second bars");
    /* Tallest bar: second's bin 2 at 2/3; the y scale tops out there, so its
     * height is the whole plot, 380 - 70 = 310, and its top y = 70.
     * Its x runs from 80 + 1.0/2 * 620 = 390 to 80 + 1.5/2 * 620 = 545. */
    CHECK(strstr(svg, "<rect class=\"second\" x=\"390.00\" y=\"70.00\" width=\"155.00\" "
                      "height=\"310.00\"/>") != NULL,
          "tallest bar geometry");
    /* The threshold 1.5 sits at x = 545. */
    CHECK(strstr(svg, "<line class=\"threshold\" x1=\"545.00\"") != NULL, "threshold line");
    /* Labels are escaped. */
    CHECK(strstr(svg, "chosen &amp; rejected &lt;dev&gt;") != NULL, "title escaped");
    CHECK(strstr(svg, "rejected &quot;r&quot; (n=3)") != NULL, "legend escaped with count");
    CHECK(strstr(svg, "<dev>") == NULL, "no raw markup from labels");
    /* x ticks on [0, 2] with at most 9: step 0.5 -> 0, 0.5, 1, 1.5, 2. */
    CHECK(count_occurrences(svg, "class=\"xtick\"") == 5, "x tick count");
    CHECK(strstr(svg, ">1.5</text>") != NULL, "x tick 1.5 labelled");
    /* Bars of 1/3 are half the tallest: height 155, top at y = 225. */
    CHECK(strstr(svg, "<rect class=\"first\" x=\"80.00\" y=\"225.00\" width=\"155.00\" "
                      "height=\"155.00\"/>") != NULL,
          "first bar geometry");
    /* y ticks on [0, 2/3] with at most 6: step 0.2 -> 0, 0.2, 0.4, 0.6. */
    CHECK(count_occurrences(svg, "class=\"ytick\"") == 4, "y tick count");
    free(svg);

    figure.has_threshold = 0;
    CHECK(rc_svg_histograms_render(&figure, &svg, &len) == RC_OK, "%s", rc_last_error());
    CHECK(strstr(svg, "class=\"threshold\"") == NULL, "no threshold line when not asked");
    free(svg);
}

static void test_degenerate_figures(void) {
    char *svg = NULL;
    size_t len;
    /* All values equal: the range is padded instead of dividing by zero. */
    const float same[] = {3.0f, 3.0f};
    rc_histogram_figure flat = {0};
    flat.first = (rc_histogram_series){same, 2, "a"};
    flat.second = (rc_histogram_series){same, 2, "b"};
    CHECK(rc_svg_histograms_render(&flat, &svg, &len) == RC_OK, "%s", rc_last_error());
    CHECK(svg && strstr(svg, "nan") == NULL && strstr(svg, "inf") == NULL, "no nan/inf in output");
    free(svg);
    /* One empty series is fine; both empty is not. */
    flat.second.n = 0;
    CHECK(rc_svg_histograms_render(&flat, &svg, &len) == RC_OK, "%s", rc_last_error());
    free(svg);
    flat.first.n = 0;
    CHECK(rc_svg_histograms_render(&flat, &svg, &len) == RC_ERR_INVALID_ARG, "both empty must fail");
    const float bad[] = {1.0f, NAN};
    rc_histogram_figure with_nan = {0};
    with_nan.first = (rc_histogram_series){bad, 2, "a"};
    CHECK(rc_svg_histograms_render(&with_nan, &svg, &len) == RC_ERR_INVALID_ARG, "NaN must fail");
}

static void test_ticks(void) {
    double t[12];
    int n = 0;
    /* [0, 2], 9 ticks: raw step 0.25 -> next of 1/2/5 x 10^k is 0.5. */
    CHECK(rc_axis_ticks(0, 2, 9, t, &n) == RC_OK && n == 5, "n = %d", n);
    CHECK(n == 5 && t[0] == 0.0 && t[4] == 2.0 && t[1] == 0.5, "ticks 0..2");
    /* [-3.7, 12.2], 8 ticks: raw 15.9/7 = 2.27 -> step 5: 0, 5, 10. */
    CHECK(rc_axis_ticks(-3.7, 12.2, 8, t, &n) == RC_OK && n == 3, "n = %d", n);
    CHECK(n == 3 && t[0] == 0.0 && t[1] == 5.0 && t[2] == 10.0, "ticks -3.7..12.2");
    /* [-0.3, 0.3], 7 ticks: raw 0.1 -> step 0.1; zero comes out exactly 0. */
    CHECK(rc_axis_ticks(-0.3, 0.3, 7, t, &n) == RC_OK && n == 7, "n = %d", n);
    CHECK(n == 7 && t[3] == 0.0, "middle tick is exactly zero: %g", n == 7 ? t[3] : -1);
    CHECK(rc_axis_ticks(1, 1, 5, t, &n) == RC_ERR_INVALID_ARG, "empty range must fail");
}

static void test_write(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics_histogram.svg", test_tmp_dir());
    rc_histogram_figure figure = sample_figure();
    CHECK(rc_svg_histograms_write(path, &figure) == RC_OK, "%s", rc_last_error());
    char *written = NULL, *expected = NULL;
    size_t written_len = 0, expected_len = 0;
    CHECK(rc_read_file(path, &written, &written_len) == RC_OK, "%s", rc_last_error());
    CHECK(rc_svg_histograms_render(&figure, &expected, &expected_len) == RC_OK, "%s", rc_last_error());
    CHECK(written && expected && written_len == expected_len &&
              memcmp(written, expected, expected_len) == 0,
          "file holds the rendered SVG");
    free(written);
    free(expected);
}

int main(void) {
    test_render();
    test_degenerate_figures();
    test_ticks();
    test_write();
    return test_finish("test_metrics_svg");
}
