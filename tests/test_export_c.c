/* htnn_packed_export_c: the generated C source compiles with the system
 * compiler (cc, C11, -Wall -Werror) and its predictions and logits equal
 * the library's on 8-bit inputs.  Skipped when no cc is installed.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <htnn/htnn.h>

static const char harness[] =
    "#include <stdio.h>\n#include <stdlib.h>\n"
    "int gen_predict(const float *x, float *logits);\n"
    "int main(int argc, char **argv)\n{\n"
    "    size_t n = (size_t)atol(argv[1]), in = (size_t)atol(argv[2]), out = (size_t)atol(argv[3]);\n"
    "    float *x = malloc(n * in * sizeof *x), *z = malloc(out * sizeof *z);\n"
    "    FILE *f = fopen(argv[4], \"rb\"), *g = fopen(argv[5], \"wb\");\n"
    "    if (!x || !z || !f || !g || fread(x, sizeof *x, n * in, f) != n * in) return 1;\n"
    "    for (size_t i = 0; i < n; i++) {\n"
    "        int c = gen_predict(x + i * in, z);\n"
    "        fwrite(&c, sizeof c, 1, g);\n        fwrite(z, sizeof *z, out, g);\n    }\n"
    "    (void)argc;\n    return fclose(g) != 0;\n}\n";

static int write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return 0;
    int ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

static htnn_net *make_net(const size_t *w, size_t n, const int *binary, uint64_t seed)
{
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    no.seed = seed;
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_create(w[0], &no, &net), HTNN_OK);
    for (size_t d = 0; d < n; d++) {
        htnn_dense_options o = HTNN_DENSE_OPTIONS_INIT;
        o.units = w[d + 1];
        o.activation = d + 1 < n ? HTNN_ACT_SIGN : HTNN_ACT_IDENTITY;
        o.binary_weights = binary[d];
        assert_int_equal(htnn_net_add_dense(net, &o, NULL), HTNN_OK);
    }
    return net;
}

static void check_export(const size_t *w, size_t layers, const int *binary, float scale)
{
    if (system("cc --version >/dev/null 2>&1") != 0)
        skip();
    char dir[] = "/tmp/htnn_export_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char gen[256], main_c[256], prog[256], xin[256], zout[256], cmd[2048];
    snprintf(gen, sizeof gen, "%s/gen.c", dir);
    snprintf(main_c, sizeof main_c, "%s/main.c", dir);
    snprintf(prog, sizeof prog, "%s/prog", dir);
    snprintf(xin, sizeof xin, "%s/x.bin", dir);
    snprintf(zout, sizeof zout, "%s/z.bin", dir);
    htnn_net *net = make_net(w, layers, binary, 11);
    htnn_packed *p = NULL;
    assert_int_equal(htnn_net_pack(net, &p), HTNN_OK);
    char *text = NULL;
    size_t size = 0;
    assert_int_equal(htnn_packed_export_c(p, "gen", &text, &size), HTNN_OK);
    assert_int_equal(strlen(text), size);
    assert_true(write_file(gen, text, size));
    assert_true(write_file(main_c, harness, strlen(harness)));
    snprintf(cmd, sizeof cmd, "cc -std=c11 -Wall -Wextra -Werror -O2 -o %s %s %s", prog, gen,
             main_c);
    assert_int_equal(system(cmd), 0);
    size_t n = 200, in = w[0], out = w[layers];
    float *x = malloc(n * in * sizeof *x), *z = malloc(n * out * sizeof *z);
    int32_t *c = malloc(n * sizeof *c);
    uint64_t s = 7;
    for (size_t i = 0; i < n * in; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        x[i] = (float)(unsigned)(s >> 56) / scale;
    }
    assert_true(write_file(xin, x, n * in * sizeof *x));
    snprintf(cmd, sizeof cmd, "%s %zu %zu %zu %s %s", prog, n, in, out, xin, zout);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(htnn_packed_predict_logits(p, x, n, z), HTNN_OK);
    assert_int_equal(htnn_packed_predict(p, x, n, c), HTNN_OK);
    FILE *f = fopen(zout, "rb");
    assert_non_null(f);
    size_t same = 0;
    for (size_t i = 0; i < n; i++) {
        int cls;
        float zz[16];
        assert_int_equal(fread(&cls, sizeof cls, 1, f), 1);
        assert_int_equal(fread(zz, sizeof *zz, out, f), out);
        same += cls == c[i];
        assert_int_equal(cls, c[i]);
        assert_memory_equal(zz, z + i * out, out * sizeof *zz);
    }
    fclose(f);
    printf("export-c %zu-layer net, inputs p/%g: %zu / %zu predictions and logits equal, "
           "%zu bytes of C\n", layers, (double)scale, same, n, size);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(x), free(z), free(c);
    htnn_free(text);
    htnn_packed_free(p);
    htnn_net_free(net);
}

static void test_binary_net_u8_inputs(void **state)
{
    (void)state;
    size_t w[] = {100, 70, 130, 10};
    int binary[] = {1, 2, 1};
    check_export(w, 3, binary, 256.0f);
    check_export(w, 3, binary, 255.0f);
}

static void test_mnist_shape(void **state)
{
    (void)state;
    size_t w[] = {784, 256, 256, 10};
    int binary[] = {1, 1, 1};
    check_export(w, 3, binary, 255.0f);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    size_t w[] = {5, 4, 3};
    int binary[] = {1, 1};
    htnn_net *net = make_net(w, 2, binary, 1);
    htnn_packed *p = NULL;
    assert_int_equal(htnn_net_pack(net, &p), HTNN_OK);
    char *text = NULL;
    size_t size = 0;
    assert_int_equal(htnn_packed_export_c(NULL, "a", &text, &size), HTNN_EINVAL);
    assert_int_equal(htnn_packed_export_c(p, "a", NULL, &size), HTNN_EINVAL);
    assert_int_equal(htnn_packed_export_c(p, "9lives", &text, &size), HTNN_EINVAL);
    assert_int_equal(htnn_packed_export_c(p, "a-b", &text, &size), HTNN_EINVAL);
    assert_int_equal(htnn_packed_export_c(p, "", &text, &size), HTNN_EINVAL);
    assert_null(text);
    assert_int_equal(htnn_packed_export_c(p, NULL, &text, &size), HTNN_OK);
    assert_non_null(strstr(text, "int htnn_model_predict(const float *x, float *logits)"));
    htnn_free(text);
    htnn_packed_free(p);
    htnn_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_binary_net_u8_inputs),
        cmocka_unit_test(test_mnist_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
