#ifndef CFFMPEG_H
#define CFFMPEG_H

// FFmpeg, loaded on first use with dlopen rather than linked.
//
// Why: libavformat alone brings 134 shared libraries (every codec and network library Debian
// builds it with). Linked, all of them were mapped and relocated at every start of action-clip,
// about 40 ms of its 60 ms start-up, though a GIF job never calls FFmpeg. Now a process loads them
// only when it opens a video that giflib does not handle, and a machine without FFmpeg's runtime
// libraries still classifies GIFs.
//
// The headers are FFmpeg's own (the -dev packages), so types and constants are exactly the
// installed version's, and the library names are built from their major versions. Every function
// the decoder uses is called through `cff_<name>`, which forwards to the loaded library; call
// `cff_load` first.

#include <errno.h>
#include <stddef.h>
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libswscale/swscale.h>
#include <libavutil/imgutils.h>
#include <libavutil/error.h>

/// Loads the four FFmpeg libraries and resolves every function below, once per process (later
/// calls return the first outcome). Returns 0 on success; otherwise -1 with a one-line reason
/// (library or symbol and dlerror's text) in `reason`.
int cff_load(char *reason, size_t reason_size);

int cff_avformat_open_input(AVFormatContext **context, const char *url, const AVInputFormat *format, AVDictionary **options);
int cff_avformat_find_stream_info(AVFormatContext *context, AVDictionary **options);
void cff_avformat_close_input(AVFormatContext **context);
int cff_av_find_best_stream(AVFormatContext *context, enum AVMediaType type, int wanted, int related,
                            const AVCodec **decoder, int flags);
int cff_av_read_frame(AVFormatContext *context, AVPacket *packet);
AVCodecContext *cff_avcodec_alloc_context3(const AVCodec *codec);
void cff_avcodec_free_context(AVCodecContext **context);
int cff_avcodec_parameters_to_context(AVCodecContext *context, const AVCodecParameters *parameters);
int cff_avcodec_open2(AVCodecContext *context, const AVCodec *codec, AVDictionary **options);
int cff_avcodec_send_packet(AVCodecContext *context, const AVPacket *packet);
int cff_avcodec_receive_frame(AVCodecContext *context, AVFrame *frame);
AVPacket *cff_av_packet_alloc(void);
void cff_av_packet_free(AVPacket **packet);
void cff_av_packet_unref(AVPacket *packet);
AVFrame *cff_av_frame_alloc(void);
void cff_av_frame_free(AVFrame **frame);
void cff_av_frame_unref(AVFrame *frame);
void cff_av_log_set_level(int level);
int cff_av_strerror(int code, char *buffer, size_t size);
struct SwsContext *cff_sws_getCachedContext(struct SwsContext *context, int source_width, int source_height,
                                            enum AVPixelFormat source_format, int width, int height,
                                            enum AVPixelFormat format, int flags, SwsFilter *source_filter,
                                            SwsFilter *filter, const double *parameters);
void cff_sws_freeContext(struct SwsContext *context);
int cff_sws_scale(struct SwsContext *context, const uint8_t *const source[], const int source_stride[], int first_row,
                  int rows, uint8_t *const destination[], const int destination_stride[]);

// AVERROR(...) and AVERROR_EOF are macros, which Swift does not import.
static inline int cffmpeg_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int cffmpeg_averror_eof(void) { return AVERROR_EOF; }

#endif
