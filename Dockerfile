# flowcore on Debian bookworm, dependencies from Debian.
#   docker compose build        (the image flowcore:local, used by the
#                                flowcore and tests services)
# The image holds the library, the `flowcore` command, the migrations and
# the example workflows; the build tree stays in /src for the tests service.
FROM debian:bookworm

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libuv1-dev libjansson-dev libpq-dev libcmocka-dev libmimalloc-dev \
      cmake pkg-config gcc libc6-dev make \
      postgresql-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . /src
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DFLOWCORE_BUILD_BENCH=OFF \
 && cmake --build build -j"$(nproc)" \
 && cmake --install build --prefix /usr/local \
 && ldconfig

# /usr/local/bin/flowcore finds /usr/local/share/flowcore/migrations itself.
CMD ["flowcore", "help"]
