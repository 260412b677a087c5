// FFmpeg through dlopen: see include/cffmpeg.h for why.

#include "cffmpeg.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define CFF_STRING(x) #x
#define CFF_SONAME(library, major) "lib" library ".so." CFF_STRING(major)

enum { CFF_AVUTIL, CFF_SWSCALE, CFF_AVCODEC, CFF_AVFORMAT, CFF_LIBRARIES };

// In dependency order, so each library finds what it needs already loaded.
static const char *const cff_sonames[CFF_LIBRARIES] = {
    CFF_SONAME("avutil", LIBAVUTIL_VERSION_MAJOR),
    CFF_SONAME("swscale", LIBSWSCALE_VERSION_MAJOR),
    CFF_SONAME("avcodec", LIBAVCODEC_VERSION_MAJOR),
    CFF_SONAME("avformat", LIBAVFORMAT_VERSION_MAJOR),
};

// X(library, return type, name, parameters, arguments) for functions returning a value,
// V(library, name, parameters, arguments) for void ones.
#define CFF_FUNCTIONS(X, V)                                                                                    \
    X(CFF_AVFORMAT, int, avformat_open_input, (AVFormatContext **a, const char *b, const AVInputFormat *c,       \
                                               AVDictionary **d), (a, b, c, d))                               \
    X(CFF_AVFORMAT, int, avformat_find_stream_info, (AVFormatContext *a, AVDictionary **b), (a, b))             \
    V(CFF_AVFORMAT, avformat_close_input, (AVFormatContext **a), (a))                                          \
    X(CFF_AVFORMAT, int, av_find_best_stream, (AVFormatContext *a, enum AVMediaType b, int c, int d,            \
                                               const AVCodec **e, int f), (a, b, c, d, e, f))                 \
    X(CFF_AVFORMAT, int, av_read_frame, (AVFormatContext *a, AVPacket *b), (a, b))                              \
    X(CFF_AVCODEC, AVCodecContext *, avcodec_alloc_context3, (const AVCodec *a), (a))                           \
    V(CFF_AVCODEC, avcodec_free_context, (AVCodecContext **a), (a))                                            \
    X(CFF_AVCODEC, int, avcodec_parameters_to_context, (AVCodecContext *a, const AVCodecParameters *b), (a, b)) \
    X(CFF_AVCODEC, int, avcodec_open2, (AVCodecContext *a, const AVCodec *b, AVDictionary **c), (a, b, c))      \
    X(CFF_AVCODEC, int, avcodec_send_packet, (AVCodecContext *a, const AVPacket *b), (a, b))                    \
    X(CFF_AVCODEC, int, avcodec_receive_frame, (AVCodecContext *a, AVFrame *b), (a, b))                         \
    X(CFF_AVCODEC, AVPacket *, av_packet_alloc, (void), ())                                                    \
    V(CFF_AVCODEC, av_packet_free, (AVPacket **a), (a))                                                        \
    V(CFF_AVCODEC, av_packet_unref, (AVPacket *a), (a))                                                        \
    X(CFF_AVUTIL, AVFrame *, av_frame_alloc, (void), ())                                                       \
    V(CFF_AVUTIL, av_frame_free, (AVFrame **a), (a))                                                           \
    V(CFF_AVUTIL, av_frame_unref, (AVFrame *a), (a))                                                           \
    V(CFF_AVUTIL, av_log_set_level, (int a), (a))                                                              \
    X(CFF_AVUTIL, int, av_strerror, (int a, char *b, size_t c), (a, b, c))                                      \
    X(CFF_SWSCALE, struct SwsContext *, sws_getCachedContext, (struct SwsContext *a, int b, int c,              \
      enum AVPixelFormat d, int e, int f, enum AVPixelFormat g, int h, SwsFilter *i, SwsFilter *j,              \
      const double *k), (a, b, c, d, e, f, g, h, i, j, k))                                                     \
    V(CFF_SWSCALE, sws_freeContext, (struct SwsContext *a), (a))                                               \
    X(CFF_SWSCALE, int, sws_scale, (struct SwsContext *a, const uint8_t *const b[], const int c[], int d,       \
                                    int e, uint8_t *const f[], const int g[]), (a, b, c, d, e, f, g))

// One pointer per function, typed from FFmpeg's own declaration.
#define CFF_POINTER(library, type, name, parameters, arguments) static __typeof__(&name) cff_pointer_##name;
#define CFF_VOID_POINTER(library, name, parameters, arguments) static __typeof__(&name) cff_pointer_##name;
CFF_FUNCTIONS(CFF_POINTER, CFF_VOID_POINTER)

#define CFF_FORWARD(library, type, name, parameters, arguments) \
    type cff_##name parameters { return cff_pointer_##name arguments; }
#define CFF_VOID_FORWARD(library, name, parameters, arguments) \
    void cff_##name parameters { cff_pointer_##name arguments; }
CFF_FUNCTIONS(CFF_FORWARD, CFF_VOID_FORWARD)

static pthread_once_t cff_once = PTHREAD_ONCE_INIT;
static int cff_status = -1;
static char cff_reason[512] = "FFmpeg was not loaded";

static void cff_load_once(void) {
    void *handles[CFF_LIBRARIES] = {0};
    for (int library = 0; library < CFF_LIBRARIES; library++) {
        // RTLD_GLOBAL: the later libraries resolve their calls into the earlier ones.
        handles[library] = dlopen(cff_sonames[library], RTLD_NOW | RTLD_GLOBAL);
        if (!handles[library]) {
            const char *error = dlerror();
            snprintf(cff_reason, sizeof cff_reason, "cannot load FFmpeg's %s (install FFmpeg's runtime libraries): %s",
                     cff_sonames[library], error ? error : "unknown error");
            return;
        }
    }
#define CFF_RESOLVE(library, type, name, parameters, arguments) CFF_RESOLVE_ONE(library, name)
#define CFF_VOID_RESOLVE(library, name, parameters, arguments) CFF_RESOLVE_ONE(library, name)
#define CFF_RESOLVE_ONE(library, name)                                                                       \
    *(void **)(&cff_pointer_##name) = dlsym(handles[library], #name);                                        \
    if (!cff_pointer_##name) {                                                                               \
        snprintf(cff_reason, sizeof cff_reason, "FFmpeg's %s has no function %s", cff_sonames[library], #name); \
        return;                                                                                              \
    }
    CFF_FUNCTIONS(CFF_RESOLVE, CFF_VOID_RESOLVE)
    cff_status = 0;
}

int cff_load(char *reason, size_t reason_size) {
    pthread_once(&cff_once, cff_load_once);
    if (cff_status != 0 && reason && reason_size > 0) snprintf(reason, reason_size, "%s", cff_reason);
    return cff_status;
}
