# coin-pricer in a container: built on Debian bookworm, run on bookworm-slim with only the
# runtime libraries, jq, gnuplot and psql. The default command is the worker; any other
# coin-pricer command runs as `docker run IMAGE coin-pricer status`.

FROM debian:bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential libcjson-dev libcurl4-openssl-dev libpq-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile pipeline.sh ./
COPY stages stages
COPY scripts scripts
COPY schemas schemas
RUN make -j"$(nproc)" && make install PREFIX=/usr/local DESTDIR=/out

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        libcjson1 libcurl4 libpq5 ca-certificates jq gnuplot-nox postgresql-client curl procps \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/coin-pricer --create-home coin-pricer \
    && install -d -m 0700 -o coin-pricer -g coin-pricer /var/lib/coin-pricer/state
COPY --from=build /out/usr/local /usr/local
USER coin-pricer
WORKDIR /var/lib/coin-pricer
# The state folder exists in the image, the user's own: a named volume mounted there (as
# compose.yaml's) starts as a copy of it, else it would be root's, and the token cache
# and the rate limit state could not be written (a token request for every job).
ENV COIN_PRICER_STATE_DIR=/var/lib/coin-pricer/state LOG_FORMAT=json
# SIGTERM lets the job in hand finish (30 s grace): give `docker stop` more, -t 45.
STOPSIGNAL SIGTERM
CMD ["coin-pricer", "worker"]
