package artifacts

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/fleetlab/fleetlab/sim/awsapi"
)

// apiError is an S3 error response: the HTTP status, the code SDKs map to typed errors, and the extra elements
// S3 puts in the body for some codes.
type apiError struct {
	status        int
	code, message string
	bucket, key   string
	// Elements some codes carry.
	condition, rangeRequested, actualSize, proposedSize, maxSize, uploadID string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

var (
	errMethodNotAllowed = &apiError{status: http.StatusMethodNotAllowed, code: "MethodNotAllowed",
		message: "The specified method is not allowed against this resource."}
	errMalformedXML = &apiError{status: http.StatusBadRequest, code: "MalformedXML",
		message: "The XML you provided was not well-formed or did not validate against our published schema."}
	errBadDigest = &apiError{status: http.StatusBadRequest, code: "BadDigest",
		message: "The Content-MD5 you specified did not match what we received."}
)

func invalidRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "InvalidRequest", message: fmt.Sprintf(format, args...)}
}

func invalidArgument(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "InvalidArgument", message: msg}
}

func tooLarge(size, limit int64) error {
	return fmt.Errorf("%w: %w", ErrTooLarge, &apiError{status: http.StatusBadRequest, code: "EntityTooLarge",
		message: "Your proposed upload exceeds the maximum allowed size", proposedSize: strconv.FormatInt(size, 10),
		maxSize: strconv.FormatInt(limit, 10)})
}

// toAPIError maps an error from the store or from reading a request to the S3 error that answers it.
func (q *request) toAPIError(err error) *apiError {
	var ae *apiError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		c := *ae
		ae = &c
	case errors.Is(err, ErrNoSuchBucket):
		ae = &apiError{status: http.StatusNotFound, code: "NoSuchBucket", message: "The specified bucket does not exist"}
	case errors.Is(err, ErrNoSuchKey):
		ae = &apiError{status: http.StatusNotFound, code: "NoSuchKey", message: "The specified key does not exist."}
	case errors.Is(err, errNoSuchUpload):
		ae = &apiError{status: http.StatusNotFound, code: "NoSuchUpload", uploadID: q.query.Get("uploadId"),
			message: "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."}
	case errors.Is(err, ErrBucketExists):
		ae = &apiError{status: http.StatusConflict, code: "BucketAlreadyOwnedByYou",
			message: "Your previous request to create the named bucket succeeded and you already own it."}
	case errors.Is(err, ErrBucketNotEmpty):
		ae = &apiError{status: http.StatusConflict, code: "BucketNotEmpty", message: "The bucket you tried to delete is not empty"}
	case errors.Is(err, ErrInvalidBucketName):
		ae = &apiError{status: http.StatusBadRequest, code: "InvalidBucketName", message: "The specified bucket is not valid."}
	case errors.Is(err, ErrInvalidKey) && len(q.key) > MaxKeyLength:
		ae = &apiError{status: http.StatusBadRequest, code: "KeyTooLongError", message: "Your key is too long"}
	case errors.Is(err, ErrInvalidKey):
		ae = invalidArgument("Object keys must be valid UTF-8.")
	case errors.Is(err, ErrTooLarge):
		ae = &apiError{status: http.StatusBadRequest, code: "EntityTooLarge",
			message: "Your proposed upload exceeds the maximum allowed size", maxSize: strconv.FormatInt(q.s.maxSize, 10)}
	case errors.Is(err, errChunkSignature):
		ae = &apiError{status: http.StatusForbidden, code: "SignatureDoesNotMatch",
			message: "The request signature we calculated does not match the signature you provided."}
	case errors.Is(err, awsapi.ErrPayloadMismatch):
		ae = &apiError{status: http.StatusBadRequest, code: "XAmzContentSHA256Mismatch",
			message: "The provided 'x-amz-content-sha256' header does not match what was computed."}
	case errors.Is(err, errMalformedChunk):
		ae = invalidRequest("%v", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		ae = &apiError{status: http.StatusBadRequest, code: "IncompleteBody", message: "The request body terminated unexpectedly"}
	case errors.As(err, &tooBig):
		ae = &apiError{status: http.StatusBadRequest, code: "MaxMessageLengthExceeded", message: "Your request was too big."}
	default:
		ae = &apiError{status: http.StatusInternalServerError, code: "InternalError",
			message: "We encountered an internal error. Please try again."}
	}
	switch ae.code {
	case "NoSuchBucket", "BucketAlreadyOwnedByYou", "BucketNotEmpty", "InvalidBucketName":
		ae.bucket = q.bucket
	case "NoSuchKey", "KeyTooLongError":
		if ae.key == "" {
			ae.key = q.key
		}
	}
	return ae
}

// errorBody is S3's error document. Its element order is S3's.
type errorBody struct {
	XMLName          xml.Name `xml:"Error"`
	Code             string
	Message          string
	BucketName       string `xml:",omitempty"`
	Key              string `xml:",omitempty"`
	Condition        string `xml:",omitempty"`
	RangeRequested   string `xml:",omitempty"`
	ActualObjectSize string `xml:",omitempty"`
	ProposedSize     string `xml:",omitempty"`
	MaxSizeAllowed   string `xml:",omitempty"`
	UploadId         string `xml:",omitempty"`
	RequestId        string
	HostId           string
}

// writeError answers the request with err as S3 would: its status, and but for HEAD its error document.
func (q *request) writeError(err error) {
	ae := q.toAPIError(err)
	if q.r.Method == http.MethodHead {
		q.w.WriteHeader(ae.status)
		return
	}
	writeXML(q.w, ae.status, errorBody{
		Code: ae.code, Message: ae.message, BucketName: ae.bucket, Key: ae.key, Condition: ae.condition,
		RangeRequested: ae.rangeRequested, ActualObjectSize: ae.actualSize, ProposedSize: ae.proposedSize,
		MaxSizeAllowed: ae.maxSize, UploadId: ae.uploadID, RequestId: q.id, HostId: q.w.Header().Get("X-Amz-Id-2"),
	})
}
