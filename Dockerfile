# Multi-stage: build a wheel with its dependencies, then a slim non-root runtime.
FROM python:3.11-slim AS build
WORKDIR /src
# gcc for the compiled stages (monitor/_*.c); the image already has the Python headers.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* && pip install --no-cache-dir --upgrade pip
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 monitor
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY rules /etc/news-monitor/rules
USER monitor
WORKDIR /home/monitor
ENV NEWS_MONITOR_STATE_DIR=/home/monitor/state \
    NEWS_MONITOR_LISTEN=0.0.0.0:9108
EXPOSE 9108
ENTRYPOINT ["news-monitor"]
CMD ["run"]
