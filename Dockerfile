FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --system ledgerx && chown -R ledgerx /app
USER ledgerx
EXPOSE 8000
CMD ["gunicorn", "ledgerx.wsgi:application"]
