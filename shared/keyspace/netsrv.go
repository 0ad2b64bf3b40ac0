package keyspace

// NetsrvGroup is the consumer group on voltage:changes of one netsrv link, so
// every link progresses (and resumes after an outage) independently.
func NetsrvGroup(link string) string { return "netsrv:" + link }
