// libglibc_malloc_preload.so: an LD_PRELOAD shim that routes every
// allocation entry point (malloc family and C++ operator new/delete) of a
// process to glibc's own allocator, bypassing the jemalloc that
// spate-server links.
//
// Why: the harness's clock faults run a node under libfaketime, and
// libfaketime cannot initialize inside a jemalloc process (jemalloc calls
// clock_gettime while initializing; libfaketime's set-up calls dlsym,
// which allocates: an unbreakable recursion, libfaketime issue #130). With
// this shim preloaded before libfaketime, jemalloc is never entered. Only
// the allocator changes; the server's code is the same.
// Threading: as thread-safe as glibc's malloc.
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>

#include <new>

extern "C" {
void* __libc_malloc(size_t size);
void __libc_free(void* ptr);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* ptr, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
void* __libc_valloc(size_t size);
void* __libc_pvalloc(size_t size);

void* malloc(size_t size) { return __libc_malloc(size); }
void free(void* ptr) { __libc_free(ptr); }
void* calloc(size_t count, size_t size) { return __libc_calloc(count, size); }
void* realloc(void* ptr, size_t size) { return __libc_realloc(ptr, size); }
void* memalign(size_t alignment, size_t size) {
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(size_t alignment, size_t size) {
  return __libc_memalign(alignment, size);
}
void* valloc(size_t size) { return __libc_valloc(size); }
void* pvalloc(size_t size) { return __libc_pvalloc(size); }
int posix_memalign(void** out, size_t alignment, size_t size) {
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) {
    return EINVAL;
  }
  void* ptr = __libc_memalign(alignment, size);
  if (ptr == nullptr) return ENOMEM;
  *out = ptr;
  return 0;
}
// glibc's own malloc_usable_size (the executable's jemalloc would
// otherwise answer for glibc's blocks).
size_t malloc_usable_size(void* ptr) {
  using Fn = size_t (*)(void*);
  static Fn const glibc = [] {
    void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    return libc ? reinterpret_cast<Fn>(dlsym(libc, "malloc_usable_size"))
                : nullptr;
  }();
  return glibc ? glibc(ptr) : 0;
}
}  // extern "C"

namespace {

void* NewOrThrow(size_t size) {
  void* ptr = __libc_malloc(size == 0 ? 1 : size);
  if (ptr == nullptr) throw std::bad_alloc();
  return ptr;
}

void* AlignedNewOrThrow(size_t size, std::align_val_t alignment) {
  void* ptr =
      __libc_memalign(static_cast<size_t>(alignment), size == 0 ? 1 : size);
  if (ptr == nullptr) throw std::bad_alloc();
  return ptr;
}

}  // namespace

void* operator new(size_t size) { return NewOrThrow(size); }
void* operator new[](size_t size) { return NewOrThrow(size); }
void* operator new(size_t size, const std::nothrow_t&) noexcept {
  return __libc_malloc(size == 0 ? 1 : size);
}
void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  return __libc_malloc(size == 0 ? 1 : size);
}
void* operator new(size_t size, std::align_val_t alignment) {
  return AlignedNewOrThrow(size, alignment);
}
void* operator new[](size_t size, std::align_val_t alignment) {
  return AlignedNewOrThrow(size, alignment);
}
void* operator new(size_t size, std::align_val_t alignment,
                   const std::nothrow_t&) noexcept {
  return __libc_memalign(static_cast<size_t>(alignment), size == 0 ? 1 : size);
}
void* operator new[](size_t size, std::align_val_t alignment,
                     const std::nothrow_t&) noexcept {
  return __libc_memalign(static_cast<size_t>(alignment), size == 0 ? 1 : size);
}
void operator delete(void* ptr) noexcept { __libc_free(ptr); }
void operator delete[](void* ptr) noexcept { __libc_free(ptr); }
void operator delete(void* ptr, const std::nothrow_t&) noexcept {
  __libc_free(ptr);
}
void operator delete[](void* ptr, const std::nothrow_t&) noexcept {
  __libc_free(ptr);
}
void operator delete(void* ptr, size_t) noexcept { __libc_free(ptr); }
void operator delete[](void* ptr, size_t) noexcept { __libc_free(ptr); }
void operator delete(void* ptr, std::align_val_t) noexcept { __libc_free(ptr); }
void operator delete[](void* ptr, std::align_val_t) noexcept {
  __libc_free(ptr);
}
void operator delete(void* ptr, std::align_val_t,
                     const std::nothrow_t&) noexcept {
  __libc_free(ptr);
}
void operator delete[](void* ptr, std::align_val_t,
                       const std::nothrow_t&) noexcept {
  __libc_free(ptr);
}
void operator delete(void* ptr, size_t, std::align_val_t) noexcept {
  __libc_free(ptr);
}
void operator delete[](void* ptr, size_t, std::align_val_t) noexcept {
  __libc_free(ptr);
}
