/* identity_qr: QR codes as PNG and SVG. */
#include "identity_qr.h"

#include <errno.h>
#include <png.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUIET 4

static int encode(const char *text, QRcode **ret) {
        if (!text || !text[0] || strnlen(text, IDENTITY_QR_TEXT_MAX + 1) > IDENTITY_QR_TEXT_MAX)
                return -EINVAL;
        QRcode *qr = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M);
        if (!qr)
                return errno == ENOMEM ? -ENOMEM : -EIO;
        *ret = qr;
        return 0;
}

struct membuf {
        unsigned char *data;
        size_t len, cap;
        int failed;
};

static void png_write_mem(png_structp png, png_bytep data, png_size_t len) {
        struct membuf *m = png_get_io_ptr(png);
        if (m->failed)
                return;
        if (m->len + len > m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 4096;
                while (cap < m->len + len)
                        cap *= 2;
                unsigned char *d = realloc(m->data, cap);
                if (!d) {
                        m->failed = 1;
                        return;
                }
                m->data = d;
                m->cap = cap;
        }
        memcpy(m->data + m->len, data, len);
        m->len += len;
}

static void png_flush_mem(png_structp png) {
        (void)png;
}

int identity_qr_png(const char *text, unsigned module_px, unsigned char **ret_png, size_t *ret_len) {
        if (module_px < 1 || module_px > IDENTITY_QR_MODULE_PX_MAX)
                return -EINVAL;
        QRcode *qr = NULL;
        int r = encode(text, &qr);
        if (r < 0)
                return r;
        size_t modules = (size_t)qr->width + 2 * QUIET;
        size_t side = modules * module_px;
        size_t row_bytes = (side + 7) / 8;
        unsigned char *row = calloc(1, row_bytes);
        struct membuf m = { 0 };
        png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
        png_infop info = png ? png_create_info_struct(png) : NULL;
        if (!row || !png || !info) {
                r = -ENOMEM;
                goto out;
        }
        if (setjmp(png_jmpbuf(png))) {
                r = -EIO;
                goto out;
        }
        png_set_write_fn(png, &m, png_write_mem, png_flush_mem);
        png_set_IHDR(png, info, (png_uint_32)side, (png_uint_32)side, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        for (size_t y = 0; y < side; y++) {
                size_t my = y / module_px;
                memset(row, 0xFF, row_bytes); /* 1 = white in 1-bit greyscale */
                for (size_t x = 0; x < side; x++) {
                        size_t mx = x / module_px;
                        int dark = 0;
                        if (my >= QUIET && mx >= QUIET && my < QUIET + (size_t)qr->width &&
                            mx < QUIET + (size_t)qr->width)
                                dark = qr->data[(my - QUIET) * (size_t)qr->width + (mx - QUIET)] & 1;
                        if (dark)
                                row[x / 8] &= (unsigned char)~(0x80u >> (x % 8));
                }
                png_write_row(png, row);
        }
        png_write_end(png, NULL);
        if (m.failed) {
                r = -ENOMEM;
                goto out;
        }
        *ret_png = m.data;
        *ret_len = m.len;
        m.data = NULL;
        r = 0;
out:
        png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
        free(m.data);
        free(row);
        QRcode_free(qr);
        return r;
}

int identity_qr_svg(const char *text, char **ret_svg) {
        QRcode *qr = NULL;
        int r = encode(text, &qr);
        if (r < 0)
                return r;
        int w = qr->width, side = w + 2 * QUIET;
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) {
                QRcode_free(qr);
                return -ENOMEM;
        }
        fprintf(f,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
                "shape-rendering=\"crispEdges\">\n<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n<path fill=\"#000\" d=\"",
                side, side, side * 8, side * 8, side, side);
        for (int y = 0; y < w; y++)
                for (int x = 0; x < w; x++)
                        if (qr->data[y * w + x] & 1)
                                fprintf(f, "M%d %dh1v1h-1z", x + QUIET, y + QUIET);
        fprintf(f, "\"/>\n</svg>\n");
        QRcode_free(qr);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret_svg = buf;
        return 0;
}
