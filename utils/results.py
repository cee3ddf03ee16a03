"""Result files are appended one whole record per write, so a crash never leaves half a record."""


def append_record(path, record):
    with open(path, "a", encoding="utf-8") as f:
        f.write(record)


def forecast_record(setting, mse, mae):
    return f"{setting}  \nmse:{str(mse)}, mae:{str(mae)}\n\n"
