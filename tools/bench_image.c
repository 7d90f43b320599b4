/* anygpt-bench-image: time of the SEED tokenizer's image preprocessing on one core: a camera
 * frame resized to 224x224 with the PIL-exact bicubic filter, then CLIP-normalised.
 *
 *   anygpt-bench-image [--width W] [--height H] [--reps R]     (default 1920 x 1080, 20 reps)
 *
 * The frame is BGRx (what a video pipeline typically hands over) filled with noise; prints the
 * best and median time per frame of each stage. For comparison, PIL's own Image.resize of the
 * same size can be timed with: python3 -m timeit -s "from PIL import Image;
 * im = Image.new('RGB', (1920, 1080))" "im.resize((224, 224), Image.BICUBIC)". */
#include "anygpt/error.h"
#include "anygpt/image.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int w = 1920, h = 1080, reps = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--width"))
            w = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--height"))
            h = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [--width W] [--height H] [--reps R]\n", argv[0]);
            return 2;
        }
    }
    if (w < 1 || h < 1 || w > AG_IMAGE_MAX_SIDE || h > AG_IMAGE_MAX_SIDE || reps < 1 || reps > 10000) {
        fprintf(stderr, "bad size or reps\n");
        return 2;
    }
    const size_t stride = (size_t)w * 4;
    uint8_t *frame = malloc(stride * (size_t)h), *rgb = malloc(224 * 224 * 3);
    float *chw = malloc(sizeof(float) * 3 * 224 * 224);
    double *t_resize = malloc(sizeof(double) * (size_t)reps), *t_norm = malloc(sizeof(double) * (size_t)reps);
    if (!frame || !rgb || !chw || !t_resize || !t_norm) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    uint32_t v = 12345;
    for (size_t i = 0; i < stride * (size_t)h; i++) {
        v = v * 1664525u + 1013904223u;
        frame[i] = (uint8_t)(v >> 24);
    }
    ag_image_view view = {frame, w, h, stride, 4, 2, 1, 0};
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        if (ag_image_resize_bicubic(&view, 224, 224, rgb) != 0) {
            fprintf(stderr, "resize: %s\n", ag_last_error());
            return 1;
        }
        double t1 = now_s();
        ag_image_normalize(rgb, 224, 224, AG_CLIP_MEAN, AG_CLIP_STD, chw);
        t_resize[r] = (t1 - t0) * 1e3;
        t_norm[r] = (now_s() - t1) * 1e3;
    }
    qsort(t_resize, (size_t)reps, sizeof(double), cmp_double);
    qsort(t_norm, (size_t)reps, sizeof(double), cmp_double);
    printf("resize %dx%d BGRx -> 224x224 (PIL bicubic): best %.2f ms, median %.2f ms\n", w, h, t_resize[0],
           t_resize[reps / 2]);
    printf("normalize 224x224 (CLIP): best %.3f ms, median %.3f ms\n", t_norm[0], t_norm[reps / 2]);
    free(frame);
    free(rgb);
    free(chw);
    free(t_resize);
    free(t_norm);
    return 0;
}
