/* The one time parser and formatter (include/credvault/isotime.h). Fields are
 * read digit by digit at fixed positions — never with sscanf, whose %d takes a
 * sign and spaces — and the calendar is computed here, never by timegm, which
 * silently turns 2026-02-31 into 2026-03-03. */
#include <string.h>

#include "credvault/isotime.h"

#define MS_PER_DAY INT64_C(86400000)
#define TIME_TEXT_MAX_BYTES 40 /* the longest accepted form is 35 bytes */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil; exact for every year credvault accepts). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned mp = m > 2 ? m - 3 : m + 9; /* March is month 0 */
    unsigned doy = (153 * mp + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* Exactly n ASCII digits at p; -1 otherwise. */
static int digits(const char *p, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* The zone of the OFFSET form: +HH:MM, +HHMM or +HH; minutes east of UTC. */
static int parse_offset(const char **pp, int *minutes)
{
    const char *p = *pp;
    int sign = *p == '-' ? -1 : 1;
    int h = digits(p + 1, 2), m = 0;
    if (h < 0 || h > 23) return -1;
    p += 3;
    if (*p == ':') {
        if ((m = digits(p + 1, 2)) < 0) return -1;
        p += 3;
    } else if (*p >= '0' && *p <= '9') {
        if ((m = digits(p, 2)) < 0) return -1;
        p += 2;
    }
    if (m > 59) return -1;
    *minutes = sign * (h * 60 + m);
    *pp = p;
    return 0;
}

cv_result cv_time_parse(const char *what, const char *s, unsigned forms, int64_t *ms)
{
    CV_ENSURE_REF(what);
    CV_ENSURE_REF(ms);
    CV_ENSURE(s != NULL, CV_ERR_INPUT, "%s is missing", what);
    size_t len = strnlen(s, TIME_TEXT_MAX_BYTES + 1);
    const char *shape = forms & CV_TIME_DATE ? "an ISO 8601 UTC date or time such as 2026-12-31 or 2026-12-31T00:00:00Z"
                                              : "an ISO 8601 UTC time such as 2026-12-31T00:00:00Z";
    CV_ENSURE(len <= TIME_TEXT_MAX_BYTES && len >= 10, CV_ERR_INPUT, "%s must be %s", what, shape);

    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    CV_ENSURE(y >= 0 && s[4] == '-' && mo >= 0 && s[7] == '-' && d >= 0, CV_ERR_INPUT, "%s must be %s", what, shape);
    int h = 0, mi = 0, sec = 0, frac = 0, offset = 0;
    const char *p = s + 10;
    if (*p == '\0') {
        CV_ENSURE(forms & CV_TIME_DATE, CV_ERR_INPUT, "%s must be %s", what, shape);
    } else {
        CV_ENSURE(*p == 'T' || (*p == ' ' && (forms & CV_TIME_OFFSET)), CV_ERR_INPUT, "%s must be %s", what, shape);
        h = digits(p + 1, 2);
        CV_ENSURE(h >= 0 && p[3] == ':', CV_ERR_INPUT, "%s must be %s", what, shape);
        mi = digits(p + 4, 2);
        CV_ENSURE(mi >= 0 && p[6] == ':', CV_ERR_INPUT, "%s must be %s", what, shape);
        sec = digits(p + 7, 2);
        CV_ENSURE(sec >= 0, CV_ERR_INPUT, "%s must be %s", what, shape);
        p += 9;
        if (*p == '.') {
            size_t n = 0;
            for (p++; *p >= '0' && *p <= '9'; p++, n++)
                if (n < 3) frac = frac * 10 + (*p - '0');
            CV_ENSURE(n >= 1 && n <= 9, CV_ERR_INPUT, "%s has a fraction of a second of 1 to 9 digits", what);
            for (; n < 3; n++) frac *= 10;
        }
        if (*p == 'Z') {
            p++;
        } else if (forms & CV_TIME_OFFSET) {
            if (*p == '+' || *p == '-') CV_ENSURE(parse_offset(&p, &offset) == 0, CV_ERR_INPUT, "%s has an invalid zone offset", what);
        } else {
            CV_BAIL(CV_ERR_INPUT, "%s must end in Z (UTC)", what);
        }
        CV_ENSURE(*p == '\0', CV_ERR_INPUT, "%s must be %s", what, shape);
    }
    CV_ENSURE(y >= 1970 && mo >= 1 && mo <= 12 && d >= 1 && d <= (int)days_in_month((unsigned)y, (unsigned)mo) &&
                  h <= 23 && mi <= 59 && sec <= 59,
              CV_ERR_INPUT, "%s is not a valid date and time", what);
    int64_t v = days_from_civil(y, (unsigned)mo, (unsigned)d) * MS_PER_DAY +
                ((int64_t)h * 3600 + (int64_t)mi * 60 + sec - (int64_t)offset * 60) * 1000 + frac;
    CV_ENSURE(v >= 0 && v <= CV_TIME_MAX_MS, CV_ERR_INPUT, "%s is out of range (1970 to 9999)", what);
    *ms = v;
    return CV_OK;
}

/* n decimal digits of v, zero-padded. */
static char *put(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10) p[i] = (char)('0' + v % 10);
    return p + n;
}

void cv_time_iso8601(int64_t ms, char out[CV_TIME_TEXT_BYTES])
{
    if (ms < 0) ms = 0;
    if (ms > CV_TIME_MAX_MS) ms = CV_TIME_MAX_MS;
    int64_t days = ms / MS_PER_DAY, y;
    unsigned rest = (unsigned)(ms % MS_PER_DAY), m, d, sec = rest / 1000;
    civil_from_days(days, &y, &m, &d);
    char *p = put(out, (unsigned)y, 4);
    *p++ = '-';
    p = put(p, m, 2);
    *p++ = '-';
    p = put(p, d, 2);
    *p++ = 'T';
    p = put(p, sec / 3600, 2);
    *p++ = ':';
    p = put(p, sec / 60 % 60, 2);
    *p++ = ':';
    p = put(p, sec % 60, 2);
    *p++ = '.';
    p = put(p, rest % 1000, 3);
    *p++ = 'Z';
    *p = '\0';
}
