// Package demux holds what the streaming container readers (mkv and avi)
// share: a buffered reader that knows its offset and seeks over skipped
// elements, the cap on anything read into memory at once, the error for a
// codec or format a reader cannot pass on, and the mapping of a stream cut
// short to io.EOF.
//
// It never interprets a container itself, never opens files and never
// allocates more than a caller-given size that is within MaxElement.
package demux
