/* identity_qr: a text rendered as a QR code (libqrencode, error correction level M, 4-module quiet zone), as a PNG
 * (libpng, 1-bit greyscale, black on white) and as a standalone SVG document. No I/O. */
#pragma once

#include <stddef.h>

#define IDENTITY_QR_TEXT_MAX 256
#define IDENTITY_QR_MODULE_PX_MAX 32

/* Render text (1..256 bytes) as a PNG with module_px (1..32) pixels per module. On success *ret_png is malloc'd
 * (caller frees), *ret_len its size, and 0 is returned; -EINVAL for bad arguments, -ENOMEM, -EIO when the encoder
 * fails. */
int identity_qr_png(const char *text, unsigned module_px, unsigned char **ret_png, size_t *ret_len);

/* Render text as an SVG document (one path of unit squares, viewBox in modules). *ret_svg is malloc'd. Same
 * errors as identity_qr_png(). */
int identity_qr_svg(const char *text, char **ret_svg);
