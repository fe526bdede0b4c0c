/* An SVG figure of two overlaid reward histograms (chosen vs rejected, or
 * acceptable vs not) with axis ticks, labels, a legend and an optional
 * threshold line. Plain SVG 1.1 text, so it opens in any browser. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/eval.h"
#include "rewardc/io.h"

enum { FIGURE_WIDTH = 720, FIGURE_HEIGHT = 440, MAX_BINS = 1000, MAX_TICKS = 12 };
/* The plot area inside the figure, leaving room for ticks, labels, title. */
static const double plot_left = 80, plot_right = 700, plot_top = 70, plot_bottom = 380;

typedef struct {
    char *text;
    size_t len, capacity;
    int failed;
} text_buffer;

static void appendf(text_buffer *out, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void appendf(text_buffer *out, const char *fmt, ...) {
    if (out->failed) return;
    for (;;) {
        va_list args;
        va_start(args, fmt);
        size_t room = out->capacity - out->len;
        int n = vsnprintf(out->text ? out->text + out->len : NULL, out->text ? room : 0, fmt, args);
        va_end(args);
        if (n < 0) {
            out->failed = 1;
            return;
        }
        if (out->text && (size_t)n < room) {
            out->len += (size_t)n;
            return;
        }
        size_t wanted = (out->capacity ? out->capacity * 2 : 4096) + (size_t)n;
        char *bigger = realloc(out->text, wanted);
        if (!bigger) {
            out->failed = 1;
            return;
        }
        out->text = bigger;
        out->capacity = wanted;
    }
}

/* Text content and attribute values with &, <, >, " and ' escaped. */
static void append_escaped(text_buffer *out, const char *text) {
    for (const char *p = text ? text : ""; *p; p++) {
        switch (*p) {
        case '&': appendf(out, "&amp;"); break;
        case '<': appendf(out, "&lt;"); break;
        case '>': appendf(out, "&gt;"); break;
        case '"': appendf(out, "&quot;"); break;
        case '\'': appendf(out, "&#39;"); break;
        default: appendf(out, "%c", *p);
        }
    }
}

rc_status rc_axis_ticks(double lo, double hi, int max_ticks, double *ticks, int *n_ticks) {
    if (!isfinite(lo) || !isfinite(hi) || !(hi > lo))
        return rc_fail(RC_ERR_INVALID_ARG, "axis range [%g, %g] is empty or not finite", lo, hi);
    if (max_ticks < 2) return rc_fail(RC_ERR_INVALID_ARG, "need room for at least 2 ticks");
    static const double steps[] = {1.0, 2.0, 5.0};
    double raw = (hi - lo) / (double)(max_ticks - 1);
    double magnitude = pow(10.0, floor(log10(raw)));
    /* Try 1, 2, 5 x 10^k from just below the raw step upward until the ticks fit. */
    for (int attempt = 0; attempt < 12; attempt++) {
        double step = steps[attempt % 3] * magnitude * pow(10.0, attempt / 3);
        if (step < raw * (1.0 - 1e-12)) continue;
        double first = ceil(lo / step - 1e-9) * step;
        int count = 0;
        for (double t = first; t <= hi + step * 1e-9; t = first + step * count) {
            if (count == max_ticks) {
                count = -1;
                break;
            }
            ticks[count++] = fabs(t) < step * 1e-9 ? 0.0 : t;
        }
        if (count >= 0) {
            *n_ticks = count;
            return RC_OK;
        }
    }
    return rc_fail(RC_ERR_INVALID_ARG, "cannot place ticks on [%g, %g]", lo, hi);
}

static rc_status check_series(const rc_histogram_series *series, const char *which) {
    if (series->n && !series->values)
        return rc_fail(RC_ERR_INVALID_ARG, "histogram: %s series has no values", which);
    for (size_t i = 0; i < series->n; i++)
        if (!isfinite(series->values[i]))
            return rc_fail(RC_ERR_INVALID_ARG, "histogram: %s value %zu is not finite", which, i);
    return RC_OK;
}

static void extend_range(const rc_histogram_series *series, double *lo, double *hi) {
    for (size_t i = 0; i < series->n; i++) {
        if (series->values[i] < *lo) *lo = series->values[i];
        if (series->values[i] > *hi) *hi = series->values[i];
    }
}

/* Fraction of the series in each bin; the top edge belongs to the last bin. */
static void bin_fractions(const rc_histogram_series *series, double lo, double hi, int n_bins,
                          double *fractions) {
    for (int b = 0; b < n_bins; b++) fractions[b] = 0.0;
    for (size_t i = 0; i < series->n; i++) {
        int b = (int)floor(((double)series->values[i] - lo) / (hi - lo) * n_bins);
        if (b < 0) b = 0;
        if (b >= n_bins) b = n_bins - 1;
        fractions[b] += 1.0;
    }
    for (int b = 0; b < n_bins && series->n; b++) fractions[b] /= (double)series->n;
}

static double x_position(double value, double lo, double hi) {
    return plot_left + (value - lo) / (hi - lo) * (plot_right - plot_left);
}

static double y_position(double fraction, double top) {
    return plot_bottom - fraction / top * (plot_bottom - plot_top);
}

static void draw_bars(text_buffer *out, const double *fractions, int n_bins, double lo, double hi,
                      double top, const char *css_class) {
    double bin_width = (hi - lo) / n_bins;
    for (int b = 0; b < n_bins; b++) {
        if (fractions[b] <= 0.0) continue;
        double x0 = x_position(lo + b * bin_width, lo, hi);
        double x1 = x_position(lo + (b + 1) * bin_width, lo, hi);
        double y = y_position(fractions[b], top);
        appendf(out, "<rect class=\"%s\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n",
                css_class, x0, y, x1 - x0, plot_bottom - y);
    }
}

static void draw_axes(text_buffer *out, const rc_histogram_figure *figure, double lo, double hi,
                      double top) {
    double ticks[MAX_TICKS];
    int n_ticks = 0;
    appendf(out, "<line class=\"axis\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
            plot_left, plot_bottom, plot_right, plot_bottom);
    appendf(out, "<line class=\"axis\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
            plot_left, plot_top, plot_left, plot_bottom);
    if (rc_axis_ticks(lo, hi, 9, ticks, &n_ticks) == RC_OK)
        for (int t = 0; t < n_ticks; t++) {
            double x = x_position(ticks[t], lo, hi);
            appendf(out, "<line class=\"tick\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                    x, plot_bottom, x, plot_bottom + 5);
            appendf(out, "<text class=\"xtick\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%.6g</text>\n",
                    x, plot_bottom + 20, ticks[t]);
        }
    if (rc_axis_ticks(0.0, top, 6, ticks, &n_ticks) == RC_OK)
        for (int t = 0; t < n_ticks; t++) {
            double y = y_position(ticks[t], top);
            appendf(out, "<line class=\"tick\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                    plot_left - 5, y, plot_left, y);
            appendf(out, "<text class=\"ytick\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%.6g</text>\n",
                    plot_left - 8, y + 4, ticks[t]);
        }
    appendf(out, "<text class=\"label\" x=\"%.2f\" y=\"%d\" text-anchor=\"middle\">",
            (plot_left + plot_right) / 2, FIGURE_HEIGHT - 20);
    append_escaped(out, figure->x_label ? figure->x_label : "reward");
    appendf(out, "</text>\n<text class=\"label\" transform=\"translate(22 %.2f) rotate(-90)\" "
                 "text-anchor=\"middle\">fraction of examples</text>\n",
            (plot_top + plot_bottom) / 2);
}

/* The legend sits in a row between the title and the plot, so it can never
 * hide a bar. */
static void draw_legend(text_buffer *out, const rc_histogram_figure *figure) {
    const rc_histogram_series *series[2] = {&figure->first, &figure->second};
    const char *classes[2] = {"first", "second"};
    for (int s = 0; s < 2; s++) {
        double x = plot_left + 300 * s;
        appendf(out, "<rect class=\"%s\" x=\"%.2f\" y=\"40\" width=\"14\" height=\"14\"/>\n",
                classes[s], x);
        appendf(out, "<text class=\"legend\" x=\"%.2f\" y=\"52\">", x + 20);
        append_escaped(out, series[s]->label ? series[s]->label : classes[s]);
        appendf(out, " (n=%zu)</text>\n", series[s]->n);
    }
}

rc_status rc_svg_histograms_render(const rc_histogram_figure *figure, char **svg, size_t *len) {
    rc_status st = check_series(&figure->first, "first");
    if (st == RC_OK) st = check_series(&figure->second, "second");
    if (st != RC_OK) return st;
    if (figure->first.n + figure->second.n == 0)
        return rc_fail(RC_ERR_INVALID_ARG, "histogram: both series are empty");
    int n_bins = figure->n_bins ? figure->n_bins : 30;
    if (n_bins < 1 || n_bins > MAX_BINS)
        return rc_fail(RC_ERR_INVALID_ARG, "histogram: %d bins is outside 1..%d", n_bins, MAX_BINS);
    if (figure->has_threshold && !isfinite(figure->threshold))
        return rc_fail(RC_ERR_INVALID_ARG, "histogram: the threshold is not finite");

    double lo = INFINITY, hi = -INFINITY;
    extend_range(&figure->first, &lo, &hi);
    extend_range(&figure->second, &lo, &hi);
    if (figure->has_threshold) {
        if (figure->threshold < lo) lo = figure->threshold;
        if (figure->threshold > hi) hi = figure->threshold;
    }
    if (hi == lo) { /* every value equal: give the single bar some width */
        double pad = fabs(lo) > 1.0 ? fabs(lo) * 0.05 : 0.5;
        lo -= pad;
        hi += pad;
    }

    double *fractions = malloc(2 * (size_t)n_bins * sizeof *fractions);
    if (!fractions) return rc_fail(RC_ERR_OOM, "histogram: cannot hold %d bins", n_bins);
    bin_fractions(&figure->first, lo, hi, n_bins, fractions);
    bin_fractions(&figure->second, lo, hi, n_bins, fractions + n_bins);
    double top = 0.0;
    for (int b = 0; b < 2 * n_bins; b++)
        if (fractions[b] > top) top = fractions[b];

    text_buffer out = {0};
    appendf(&out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<style>.first{fill:#1f77b4;fill-opacity:0.55}.second{fill:#ff7f0e;fill-opacity:0.55}"
            ".axis,.tick{stroke:#333;stroke-width:1}"
            ".threshold{stroke:#c00;stroke-width:2;stroke-dasharray:6 4}"
            ".title{font-size:15px;font-weight:bold}</style>\n"
            "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
            FIGURE_WIDTH, FIGURE_HEIGHT, FIGURE_WIDTH, FIGURE_HEIGHT, FIGURE_WIDTH, FIGURE_HEIGHT);
    appendf(&out, "<text class=\"title\" x=\"%d\" y=\"28\" text-anchor=\"middle\">",
            FIGURE_WIDTH / 2);
    append_escaped(&out, figure->title ? figure->title : "reward distribution");
    appendf(&out, "</text>\n");
    draw_bars(&out, fractions, n_bins, lo, hi, top, "first");
    draw_bars(&out, fractions + n_bins, n_bins, lo, hi, top, "second");
    free(fractions);
    draw_axes(&out, figure, lo, hi, top);
    if (figure->has_threshold) {
        double x = x_position(figure->threshold, lo, hi);
        appendf(&out, "<line class=\"threshold\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                x, plot_top, x, plot_bottom);
        appendf(&out, "<text class=\"legend\" x=\"%.2f\" y=\"%.2f\">threshold %.6g</text>\n",
                x + 4, plot_top + 12, figure->threshold);
    }
    draw_legend(&out, figure);
    appendf(&out, "</svg>\n");
    if (out.failed) {
        free(out.text);
        return rc_fail(RC_ERR_OOM, "histogram: cannot build the SVG text");
    }
    *svg = out.text;
    *len = out.len;
    return RC_OK;
}

rc_status rc_svg_histograms_write(const char *path, const rc_histogram_figure *figure) {
    char *svg;
    size_t len;
    rc_status st = rc_svg_histograms_render(figure, &svg, &len);
    if (st != RC_OK) return st;
    st = rc_write_file_atomic(path, svg, len);
    free(svg);
    return st;
}
