-- GET with the bearer token. wrk itself reports "Non-2xx or 3xx responses".
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CV_TOKEN")
