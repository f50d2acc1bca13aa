"""spate_proto: C++ (and optionally gRPC) code from a .proto with Debian's protoc.

The native proto rules need a protobuf source repository that an offline
build cannot fetch, so a genrule runs /usr/bin/protoc (protobuf-compiler) and
grpc_cpp_plugin (protobuf-compiler-grpc) from the workspace root (-I.), which
keeps imports like `import "proto/raft.proto";` working.
"""

def spate_proto(name, src, deps = [], grpc = False, visibility = None):
    """Generates `name` (a cc_library) from `src`.

    Args:
      name: the cc_library to create; a filegroup `name + "_srcs"` carries
        the .proto files it needs, for dependants' imports.
      src: the .proto file in this package.
      deps: other spate_proto targets whose files `src` imports.
      grpc: also generate gRPC service stubs.
      visibility: visibility of the cc_library.
    """
    base = src[:-len(".proto")]
    outs = [base + ".pb.h", base + ".pb.cc"]
    if grpc:
        outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]
    native.filegroup(
        name = name + "_srcs",
        srcs = [src] + [d + "_srcs" for d in deps],
        visibility = visibility,
    )
    grpc_flags = ""
    if grpc:
        grpc_flags = ("--grpc_out=$(GENDIR) " +
                      "--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin ")
    native.genrule(
        name = name + "_gen",
        srcs = [name + "_srcs"],
        outs = outs,
        cmd = ("/usr/bin/protoc -I. --cpp_out=$(GENDIR) " + grpc_flags +
               native.package_name() + "/" + src),
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        deps = deps + ["@system//:protobuf"] + (["@system//:grpc"] if grpc else []),
        visibility = visibility,
    )
