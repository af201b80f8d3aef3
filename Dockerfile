# One image for every oracle process (API, Celery worker, beat) and the sandbox chain.
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY pyproject.toml README.md ./
COPY audio_pipeline audio_pipeline
COPY oracle_core oracle_core
COPY exchange_oracle exchange_oracle
COPY recording_oracle recording_oracle
COPY sandbox sandbox
COPY audio_oracles audio_oracles
COPY contracts-abi contracts-abi
RUN npm run --silent build:ui
# With VAD_ENGINE=silero's runtime and model (silero-vad without its torch).
RUN pip install --no-cache-dir '.[silero]' \
 && pip install --no-cache-dir --no-deps silero-vad==6.2.3
ENV PYTHONUNBUFFERED=1
