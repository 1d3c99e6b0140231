-- POST a deploy with the bearer token. wrk itself reports "Non-2xx or 3xx responses".
wrk.method = "POST"
wrk.body = os.getenv("CV_BODY")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CV_TOKEN")
wrk.headers["Content-Type"] = "application/json"
