#include "broker/events/published_event.h"

#include <cstdint>
#include <utility>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace tracim::broker {

namespace v1 = tracim::plugin::v1;
using google::protobuf::internal::WireFormatLite;

std::shared_ptr<const PublishedEvent> MakePublishedEvent(v1::Event event) {
  auto published = std::make_shared<PublishedEvent>();
  published->event = std::move(event);
  published->event.SerializeToString(&published->wire);
  return published;
}

void AppendToEventBatch(const PublishedEvent& event, std::string& batch) {
  // A repeated message field: tag, length, then the message's bytes.
  static constexpr uint32_t kTag = WireFormatLite::MakeTag(
      v1::EventBatch::kEventsFieldNumber, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  // Two varints of at most 5 bytes each.
  uint8_t header[10];
  uint8_t* end = google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(kTag, header);
  end = google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(
      static_cast<uint32_t>(event.wire.size()), end);
  batch.append(reinterpret_cast<const char*>(header), static_cast<size_t>(end - header));
  batch.append(event.wire);
}

}  // namespace tracim::broker
