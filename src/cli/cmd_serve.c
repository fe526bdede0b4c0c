/* rewardc serve: the reward model as an HTTP service (src/serve/). */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "rewardc/threads.h"

#ifndef RC_HAVE_SERVE
int cmd_serve(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "rewardc serve: this build has no HTTP server (libmicrohttpd was not found "
                    "when it was configured: install libmicrohttpd-dev and rebuild)\n");
    return 1;
}
#else
#include "serve/serve.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: rewardc serve --model DIR [--host 127.0.0.1] [--port 8080] [--admin_port N]\n"
            "                     [--backend cpu|opencl|cuda] [--device N] [--threads N]\n"
            "                     [--batch_size N] [--share_prefix true|false]\n"
            "                     [--max_batch_texts N] [--max_batch_tokens N] [--max_wait_ms MS]\n"
            "                     [--queue_texts N] [--max_texts N] [--max_body_bytes N]\n"
            "                     [--timeout_ms MS] [--http_threads N] [--max_connections N]\n\n"
            "Serves the reward model over HTTP (JSON; the API is docs/openapi.yaml):\n"
            "  POST /v1/score    {\"input\": [{\"prompt\", \"response\"} | {\"text\"} | {\"messages\"}, ...]}\n"
            "  POST /v1/gate     {\"prompt\", \"response\"} -> {\"decision\": \"accept\"|\"block\", ...}\n"
            "  POST /classify    vLLM's classification request and response\n"
            "  GET  /health, /v1/models, /metrics (Prometheus)\n"
            "Requests arriving together are scored together: one model thread takes the\n"
            "queued texts in batches, sorted by length with shared prompt beginnings computed\n"
            "once, as rewardc score does; a text alone in its batch gets exactly the reward\n"
            "rewardc score gives it with the same --batch_size.\n"
            "SIGHUP reloads the model folder (POST /admin/reload on --admin_port, loopback\n"
            "only, can name another): requests queued before are scored by the old model,\n"
            "later ones by the new; each answer says its model_version; a folder that fails\n"
            "to load leaves the old model serving. SIGINT/SIGTERM stop taking requests,\n"
            "answer those taken, and exit 0.\n\n"
            "  --model DIR          model folder (rewardc init/train, or an HF folder)\n"
            "  --host H, --port P   where to listen (127.0.0.1:8080; port 0: any free one,\n"
            "                       printed on stderr)\n"
            "  --admin_port P       loopback listener for POST /admin/reload (default: none)\n"
            "  --backend, --device, --threads, --batch_size, --share_prefix: as rewardc score\n"
            "  --max_batch_texts N  texts per model batch (128)\n"
            "  --max_batch_tokens N tokens per model batch (32768)\n"
            "  --max_wait_ms MS     how long an idle model waits for more requests before\n"
            "                       scoring the first (0: requests arriving while a batch\n"
            "                       runs form the next one, which measured faster here on\n"
            "                       the CPU than waiting: 974 vs 175 requests/s at 1\n"
            "                       connection, 1080 vs 501 at 8, with 2 ms)\n"
            "  --queue_texts N      texts queued at most; beyond, 503 with Retry-After (1024)\n"
            "  --max_texts N        texts per request; beyond, 413 (128)\n"
            "  --max_body_bytes N   request body; beyond, 413 (1048576)\n"
            "  --timeout_ms MS      a request still queued after this gets 504 (30000)\n"
            "  --http_threads N     HTTP polling threads (2), --max_connections N (1024)\n");
}

static int parse_bool(const char *name, const char *text, int *out) {
    if (!strcmp(text, "true") || !strcmp(text, "false")) {
        *out = !strcmp(text, "true");
        return 1;
    }
    fprintf(stderr, "rewardc serve: %s: '%s' is not true/false\n", name, text);
    return 0;
}

/* SIGHUP's reload: nobody waits for it; the model thread logs the result. */
static void reload_done(serve_job *job, void *ctx) {
    (void)ctx;
    serve_job_free(job);
}

int cmd_serve(int argc, char **argv) {
    const char *model = NULL, *host = "127.0.0.1", *port_text = "8080", *admin_text = "-1";
    const char *backend = "cpu", *device_text = "0", *threads_text = "0", *batch_text = "16";
    const char *share_text = "true", *batch_texts_text = "128", *batch_tokens_text = "32768";
    const char *wait_text = "0", *queue_text = "1024", *max_texts_text = "128";
    const char *body_text = "1048576", *timeout_text = "30000", *http_text = "2";
    const char *connections_text = "1024";
    for (int i = 1; i < argc; i++) {
        int r;
        if (arg_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        if ((r = arg_value(argc, argv, &i, "--model", &model)) ||
            (r = arg_value(argc, argv, &i, "--host", &host)) ||
            (r = arg_value(argc, argv, &i, "--port", &port_text)) ||
            (r = arg_value(argc, argv, &i, "--admin_port", &admin_text)) ||
            (r = arg_value(argc, argv, &i, "--backend", &backend)) ||
            (r = arg_value(argc, argv, &i, "--device", &device_text)) ||
            (r = arg_value(argc, argv, &i, "--threads", &threads_text)) ||
            (r = arg_value(argc, argv, &i, "--batch_size", &batch_text)) ||
            (r = arg_value(argc, argv, &i, "--share_prefix", &share_text)) ||
            (r = arg_value(argc, argv, &i, "--max_batch_texts", &batch_texts_text)) ||
            (r = arg_value(argc, argv, &i, "--max_batch_tokens", &batch_tokens_text)) ||
            (r = arg_value(argc, argv, &i, "--max_wait_ms", &wait_text)) ||
            (r = arg_value(argc, argv, &i, "--queue_texts", &queue_text)) ||
            (r = arg_value(argc, argv, &i, "--max_texts", &max_texts_text)) ||
            (r = arg_value(argc, argv, &i, "--max_body_bytes", &body_text)) ||
            (r = arg_value(argc, argv, &i, "--timeout_ms", &timeout_text)) ||
            (r = arg_value(argc, argv, &i, "--http_threads", &http_text)) ||
            (r = arg_value(argc, argv, &i, "--max_connections", &connections_text))) {
            if (r < 0) return 2;
            continue;
        }
        fprintf(stderr, "rewardc serve: unknown option '%s'\n", argv[i]);
        usage(stderr);
        return 2;
    }
    if (!model) {
        fprintf(stderr, "rewardc serve: --model is required\n");
        return 2;
    }
    long port, admin, device, threads, batch, batch_texts, batch_tokens, wait_ms, queue,
        max_texts, body, timeout_ms, http, connections;
    serve_options opt = {.model_dir = model, .backend = backend, .host = host};
    if (!parse_long("serve", "--port", port_text, 0, 65535, &port) ||
        !parse_long("serve", "--admin_port", admin_text, -1, 65535, &admin) ||
        !parse_long("serve", "--device", device_text, 0, 1024, &device) ||
        !parse_long("serve", "--threads", threads_text, 0, 4096, &threads) ||
        !parse_long("serve", "--batch_size", batch_text, 1, 256, &batch) ||
        !parse_long("serve", "--max_batch_texts", batch_texts_text, 1, 65536, &batch_texts) ||
        !parse_long("serve", "--max_batch_tokens", batch_tokens_text, 1, 1L << 30, &batch_tokens) ||
        !parse_long("serve", "--max_wait_ms", wait_text, 0, 10000, &wait_ms) ||
        !parse_long("serve", "--max_texts", max_texts_text, 1, 65536, &max_texts) ||
        !parse_long("serve", "--queue_texts", queue_text, max_texts, 1L << 24, &queue) ||
        !parse_long("serve", "--max_body_bytes", body_text, 64, 1L << 30, &body) ||
        !parse_long("serve", "--timeout_ms", timeout_text, 1, 3600000, &timeout_ms) ||
        !parse_long("serve", "--http_threads", http_text, 1, 256, &http) ||
        !parse_long("serve", "--max_connections", connections_text, 1, 1000000, &connections) ||
        !parse_bool("--share_prefix", share_text, &opt.share_prefix))
        return 2;
    opt.port = (int)port;
    opt.admin_port = (int)admin;
    opt.device = (int)device;
    opt.batch_rows = (int)batch;
    opt.max_batch_texts = (int)batch_texts;
    opt.max_batch_tokens = (size_t)batch_tokens;
    opt.max_wait_s = (double)wait_ms / 1000.0;
    opt.queue_texts = (int)queue;
    opt.max_texts = (int)max_texts;
    opt.max_body_bytes = (size_t)body;
    opt.timeout_s = (double)timeout_ms / 1000.0;
    opt.http_threads = (int)http;
    opt.max_connections = (int)connections;
    rc_set_num_threads((int)threads);

    /* every thread started from here on leaves these signals to sigwait below */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-answer is an error return, not a death */

    serve_metrics metrics;
    serve_registry registry;
    serve_batcher batcher;
    serve_server *server = NULL;
    serve_metrics_init(&metrics);
    serve_registry_init(&registry, &opt);
    rc_status st = serve_batcher_start(&batcher, &opt, &registry, &metrics);
    if (st == RC_OK) st = serve_server_start(&opt, &batcher, &registry, &metrics, &server);
    if (st != RC_OK) {
        fprintf(stderr, "rewardc serve: %s\n", rc_last_error());
        serve_batcher_stop(&batcher);
        serve_registry_destroy(&registry);
        serve_metrics_destroy(&metrics);
        return 1;
    }
    fprintf(stderr, "rewardc serve: listening on http://%s:%d", host, serve_server_port(server));
    if (opt.admin_port >= 0)
        fprintf(stderr, " (admin: http://127.0.0.1:%d)", serve_server_admin_port(server));
    fprintf(stderr, "; loading %s\n", model);

    int code = 0, ready = 0;
    for (;;) {
        const struct timespec tick = {0, 100 * 1000 * 1000};
        const int sig = sigtimedwait(&signals, NULL, &tick);
        if (!ready) {
            const int load = serve_batcher_first_load(&batcher);
            if (load == 1) {
                code = 1; /* the model thread said why */
                break;
            }
            if (load == 0) {
                ready = 1;
                fprintf(stderr, "rewardc serve: model version 1 ready\n");
            }
        }
        if (sig == SIGHUP) {
            serve_job *job = calloc(1, sizeof *job);
            if (job) {
                job->kind = JOB_RELOAD;
                job->done = reload_done;
                if (serve_batcher_submit(&batcher, job)) serve_job_free(job);
            }
        } else if (sig == SIGINT || sig == SIGTERM) {
            fprintf(stderr, "rewardc serve: %s: answering the requests taken, then exiting\n",
                    sig == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
    }
    serve_server_drain(server, opt.timeout_s + 5.0);
    serve_batcher_stop(&batcher);
    serve_server_stop(server);
    serve_registry_destroy(&registry);
    serve_metrics_destroy(&metrics);
    if (code == 0) fprintf(stderr, "rewardc serve: stopped\n");
    return code;
}
#endif
