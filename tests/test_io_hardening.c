/* Input hardening in src/io (issue 20): one strict JSON parse (a single value,
 * no NUL, the last of duplicate keys), range-checked JSON fields that name
 * the field and its range, the finite-weights check, the output_dir lock, the
 * cleanup of an atomic write's leftovers, and a safetensors file whose
 * header is "{}". */
#define _DEFAULT_SOURCE
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rewardc/io.h"
#include "rewardc/safetensors.h"
#include "testlib.h"

static cJSON *parse(const char *text, rc_status *st, size_t *offset) {
    cJSON *json = NULL;
    *st = rc_json_parse(text, strlen(text), &json, offset);
    return json;
}

static void test_parse(void) {
    rc_status st;
    size_t at;
    cJSON *json = parse("{\"hidden_size\": 64, \"hidden_size\": 32}", &st, &at);
    CHECK(st == RC_OK, "duplicate keys parse: %s", rc_last_error());
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(json, "hidden_size");
    CHECK(cJSON_IsNumber(h) && h->valuedouble == 32, "the last duplicate wins, as in Python (got %g)",
          h ? h->valuedouble : -1);
    CHECK(cJSON_GetArraySize(json) == 1, "one member is left");
    cJSON_Delete(json);

    json = parse("{\"a\": {\"x\": 1, \"y\": 2, \"x\": 3}, \"b\": [{\"k\": 1, \"k\": 2}]}", &st, &at);
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(json, "a"), "x");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(json, "b"), 0), "k");
    CHECK(st == RC_OK && x && x->valuedouble == 3 && k && k->valuedouble == 2,
          "nested objects and objects in arrays keep the last duplicate");
    cJSON_Delete(json);

    json = parse("{\"a\": 1} {\"a\": 2}", &st, &at);
    CHECK(st == RC_ERR_FORMAT && !json && at == 9, "two objects: error at the second (offset %zu)", at);
    CHECK(strstr(rc_last_error(), "after the JSON value") != NULL, "message: %s", rc_last_error());
    json = parse("{\"a\": 1}x", &st, &at);
    CHECK(st == RC_ERR_FORMAT && at == 8, "trailing bytes: error (offset %zu)", at);
    json = parse("{\"a\": 1}  \r\n", &st, &at);
    CHECK(st == RC_OK, "trailing whitespace is fine");
    cJSON_Delete(json);

    json = parse("{\"text\": \"before\\u0000after\"}", &st, &at);
    CHECK(st == RC_ERR_FORMAT && !json && at == 16, "\\u0000 refused (offset %zu)", at);
    CHECK(strstr(rc_last_error(), "u0000") != NULL, "message names \\u0000: %s", rc_last_error());
    json = parse("{\"text\": \"a\\\\u0000b\"}", &st, &at);
    CHECK(st == RC_OK && json && !strcmp(cJSON_GetObjectItemCaseSensitive(json, "text")->valuestring, "a\\u0000b"),
          "an escaped backslash before u0000 is plain text");
    cJSON_Delete(json);

    char with_nul[] = "{\"a\": \"x\0y\"}";
    json = NULL;
    st = rc_json_parse(with_nul, sizeof with_nul - 1, &json, &at);
    CHECK(st == RC_ERR_FORMAT && !json && at == 8, "a raw NUL byte refused (offset %zu)", at);

    json = parse("{\"a\": [1, 2", &st, &at);
    CHECK(st == RC_ERR_FORMAT && strstr(rc_last_error(), "unexpected end"), "truncated: %s", rc_last_error());
}

static void test_fields(void) {
    rc_status st;
    size_t at;
    cJSON *json = parse("{\"big\": 1e10, \"max\": 2147483647, \"frac\": 2.5, \"neg\": -3, \"str\": \"7\","
                        " \"ok\": 64, \"huge\": 1e300, \"flag\": true, \"flagnum\": 1, \"d\": 0.5, \"null\": null}",
                        &st, &at);
    CHECK(st == RC_OK, "fields parse");
    int v = -1;
    st = rc_json_get_int(json, "config.json", "big", 1, 1 << 20, &v);
    CHECK(st == RC_ERR_FORMAT && v == -1, "1e10 refused");
    CHECK(strstr(rc_last_error(), "config.json") && strstr(rc_last_error(), "\"big\"") &&
          strstr(rc_last_error(), "[1, 1048576]") && strstr(rc_last_error(), "10000000000"),
          "message names file, field, range and value: %s", rc_last_error());
    CHECK(rc_json_get_int(json, "f", "max", 1, INT32_MAX, &v) == RC_OK && v == INT32_MAX, "INT_MAX in range");
    CHECK(rc_json_get_int(json, "f", "max", 1, 1 << 16, &v) == RC_ERR_FORMAT, "2147483647 over a tighter max");
    CHECK(rc_json_get_int(json, "f", "frac", 0, 10, &v) == RC_ERR_FORMAT, "2.5 is not an integer");
    CHECK(rc_json_get_int(json, "f", "neg", 0, 10, &v) == RC_ERR_FORMAT, "-3 below the minimum");
    CHECK(rc_json_get_int(json, "f", "str", 0, 10, &v) == RC_ERR_FORMAT && strstr(rc_last_error(), "a string"),
          "a string is the wrong type: %s", rc_last_error());
    CHECK(rc_json_get_int(json, "f", "absent", 0, 10, &v) == RC_ERR_FORMAT && strstr(rc_last_error(), "missing"),
          "missing: %s", rc_last_error());
    CHECK(rc_json_get_int(json, "f", "ok", 1, 100, &v) == RC_OK && v == 64, "64 read");
    long l = 0;
    CHECK(rc_json_get_long(json, "f", "huge", 0, LONG_MAX, &l) == RC_ERR_FORMAT, "1e300 refused as a long");
    CHECK(rc_json_get_long(json, "f", "neg", -5, LONG_MAX, &l) == RC_OK && l == -3, "-3 as a long");
    bool b = false;
    CHECK(rc_json_get_bool(json, "f", "flag", &b) == RC_OK && b, "true read");
    CHECK(rc_json_get_bool(json, "f", "flagnum", &b) == RC_ERR_FORMAT, "1 is not a boolean");
    double d = 0;
    CHECK(rc_json_get_double(json, "f", "d", 0, 1, &d) == RC_OK && d == 0.5, "0.5 read");
    CHECK(rc_json_get_double(json, "f", "huge", 0, 1e9, &d) == RC_ERR_FORMAT, "1e300 over the double's max");
    const char *s = NULL;
    CHECK(rc_json_get_string(json, "f", "str", &s) == RC_OK && !strcmp(s, "7"), "string read");
    CHECK(rc_json_has(json, "ok") && !rc_json_has(json, "null") && !rc_json_has(json, "absent"),
          "rc_json_has: present, null, absent");
    cJSON_Delete(json);
}

static void test_finite(void) {
    float w[4] = {1, 2, 3, 4};
    CHECK(rc_check_finite("w", w, 4) == RC_OK, "finite weights pass");
    w[2] = NAN;
    CHECK(rc_check_finite("model.decoder.layers.0.fc1.weight", w, 4) == RC_ERR_FORMAT &&
              strstr(rc_last_error(), "model.decoder.layers.0.fc1.weight") && strstr(rc_last_error(), "index 2"),
          "NaN refused, naming the tensor and index: %s", rc_last_error());
    w[2] = 3;
    w[0] = -INFINITY;
    CHECK(rc_check_finite("w", w, 4) == RC_ERR_FORMAT, "-Inf refused");
}

static void test_lock(const char *dir) {
    char folder[4096];
    snprintf(folder, sizeof folder, "%s/locked", dir);
    rmdir(folder);
    rc_dir_lock *lock = NULL, *second = NULL;
    CHECK(rc_dir_lock_acquire(folder, &lock) == RC_OK && lock, "lock taken: %s", rc_last_error());
    CHECK(rc_path_is_dir(folder), "the folder is created");
    /* a second process (a lock held by this one does not conflict with
     * itself through another open file description either, but a child is
     * what the CLI meets) */
    pid_t child = fork();
    if (child == 0) {
        rc_dir_lock *other = NULL;
        rc_status st = rc_dir_lock_acquire(folder, &other);
        char pid[32];
        snprintf(pid, sizeof pid, "pid %ld", (long)getppid());
        _exit(st == RC_ERR_INVALID_ARG && strstr(rc_last_error(), pid) ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a second process is refused, naming the holder's pid");
    rc_dir_lock_release(lock);
    CHECK(!rc_path_is_dir(folder), "released: the folder made for it and left empty is gone");

    /* a holder killed with SIGKILL: the kernel drops the flock, the next
     * process takes the lock over */
    mkdir(folder, 0755);
    child = fork();
    if (child == 0) {
        rc_dir_lock *held = NULL;
        if (rc_dir_lock_acquire(folder, &held) != RC_OK) _exit(1);
        pause();
        _exit(0);
    }
    char lock_file[4200];
    snprintf(lock_file, sizeof lock_file, "%s/.rewardc.lock", folder);
    for (int i = 0; i < 200; i++) { /* until the child holds it */
        struct stat sb;
        if (stat(lock_file, &sb) == 0 && sb.st_size > 0) break;
        usleep(10000);
    }
    CHECK(rc_dir_lock_acquire(folder, &second) == RC_ERR_INVALID_ARG, "refused while the child holds it");
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    CHECK(rc_path_is_file(lock_file), "kill -9 leaves the lock file");
    CHECK(rc_dir_lock_acquire(folder, &second) == RC_OK, "the stale lock is taken over: %s", rc_last_error());
    rc_dir_lock_release(second);
    CHECK(rc_path_is_dir(folder) && !rc_path_is_file(lock_file), "a folder that existed stays; its lock file goes");
    rmdir(folder);
}

static void test_stale_temps(const char *dir) {
    char out[4096], stale[4200], live[4200], other[4200];
    snprintf(out, sizeof out, "%s/scores.jsonl", dir);
    snprintf(stale, sizeof stale, "%s.tmp.abc123", out);
    snprintf(other, sizeof other, "%s/scores.jsonl.tmp.toolong7", dir);
    FILE *f = fopen(stale, "w");
    fputs("partial", f);
    fclose(f);
    f = fopen(other, "w");
    fclose(f);
    rc_atomic_file *writing = NULL;
    CHECK(rc_atomic_open(out, &writing) == RC_OK, "a write in progress");
    snprintf(live, sizeof live, "%s", rc_atomic_temp_path(writing));
    /* from another process, as the next run would be */
    pid_t child = fork();
    if (child == 0) {
        int removed = -1;
        rc_status st = rc_atomic_remove_stale(out, &removed);
        _exit(st == RC_OK && removed == 1 ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "one stale temp file removed");
    CHECK(!rc_path_is_file(stale), "the unlocked leftover is gone");
    CHECK(rc_path_is_file(live), "the temp file being written (locked) stays");
    CHECK(rc_path_is_file(other), "a file that only looks alike stays");
    CHECK(rc_atomic_commit(writing) == RC_OK && rc_path_is_file(out), "the write in progress commits");
    unlink(out);
    unlink(other);
}

static void test_empty_safetensors(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/empty.safetensors", dir);
    unsigned char bytes[8 + 8] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    FILE *f = fopen(path, "wb");
    fwrite(bytes, 1, sizeof bytes, f);
    fclose(f);
    rc_safetensors *st = NULL;
    /* under UBSan the old qsort(NULL, 0) aborted here */
    CHECK(rc_st_open(path, &st) == RC_OK, "an empty header opens: %s", rc_last_error());
    CHECK(rc_st_count(st) == 0 && rc_st_find(st, "x") == NULL, "and holds no tensor");
    rc_st_close(st);
}

static void test_load_file_duplicates(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"hidden_size\": 64,\n \"hidden_size\": 32}\n", f);
    fclose(f);
    cJSON *json = NULL;
    CHECK(rc_json_load_file(path, &json) == RC_OK, "config with a duplicate key loads");
    int h = 0;
    CHECK(rc_json_get_int(json, path, "hidden_size", 1, 1 << 20, &h) == RC_OK && h == 32,
          "hidden_size 64 then 32 loads as 32, as transformers reads it (got %d)", h);
    cJSON_Delete(json);
    f = fopen(path, "w");
    fputs("{\"name\": \"a\\u0000b\"}\n", f);
    fclose(f);
    CHECK(rc_json_load_file(path, &json) == RC_ERR_FORMAT && strstr(rc_last_error(), "config.json:1:"),
          "\\u0000 in a file: error with line and column: %s", rc_last_error());
}

int main(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/io_hardening", test_tmp_dir());
    mkdir(dir, 0755);
    test_parse();
    test_fields();
    test_finite();
    test_lock(dir);
    test_stale_temps(dir);
    test_empty_safetensors(dir);
    test_load_file_duplicates(dir);
    return test_finish("test_io_hardening");
}
