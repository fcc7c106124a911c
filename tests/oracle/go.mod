module advisor-cron-oracle

go 1.19

require github.com/robfig/cron/v3 v3.0.1

replace github.com/robfig/cron/v3 => /usr/share/gocode/src/github.com/robfig/cron
